import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ACPID_WAIT_TENTHS, READY_MARKER, renderAcpidStart, renderInitScript } from './init-script.js';

const options = { hostname: 'g', modules: ['/lib/modules/button.ko', '/lib/modules/evdev.ko'] };
const lineOf = (script: string, pattern: RegExp): number => script.split('\n').findIndex((l) => pattern.test(l));

describe('renderInitScript', () => {
  it('reports ready in the ACPI guest only after waiting for acpid to hold the input devices', () => {
    const script = renderInitScript({ ...options, acpi: true });
    const acpid = lineOf(script, /^acpid /);
    const wait = lineOf(script, /\/proc\/\$\{pid:-none\}\/fd/);
    const ready = lineOf(script, new RegExp(`^echo '${READY_MARKER}'`));
    expect(acpid).toBeGreaterThan(lineOf(script, /^ *insmod /));
    expect(wait).toBeGreaterThan(acpid);
    expect(ready).toBeGreaterThan(wait);
    // the wait is bounded: a loop counter against the bound, 0.1 s a turn
    expect(script).toContain(`while [ "$tries" -lt ${ACPID_WAIT_TENTHS} ]; do`);
    expect(script).toContain('sleep 0.1');
  });

  it('leaves the --no-acpi guest without acpid and without the wait', () => {
    const script = renderInitScript({ ...options, acpi: false });
    expect(script).not.toMatch(/^acpid /m);
    expect(script).not.toMatch(/\/proc\/.*\/fd/);
    expect(script).toMatch(new RegExp(`^echo '${READY_MARKER}'`, 'm'));
  });

  it('is valid shell for busybox sh, with and without ACPI', () => {
    for (const acpi of [true, false]) {
      execFileSync('busybox', ['sh', '-n', '-c', renderInitScript({ ...options, acpi })]);
    }
  });

  it('gives up waiting after the bound when acpid never holds the devices, and says so', () => {
    // Run the wait on the host with a shortened bound and no acpid: it must end and warn.
    const wait = renderAcpidStart()
      .filter((l) => !l.startsWith('acpid '))
      .map((l) => l.replaceAll(String(ACPID_WAIT_TENTHS), '3').replaceAll('/run/acpid/acpid.pid', '/nonexistent/acpid.pid').replace('pidof acpid', 'true'))
      .join('\n');
    const out = execFileSync('busybox', ['sh', '-c', wait], { timeout: 10_000 }).toString();
    expect(out).toContain('acpid does not hold the input devices');
  });
});
