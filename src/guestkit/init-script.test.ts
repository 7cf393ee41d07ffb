import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ACPID_WAIT_TENTHS, READY_MARKER, renderAcpidStart, renderInitScript, renderUdhcpcScript } from './init-script.js';

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

describe('DHCP in the guest kit', () => {
  it('/init asks udhcpc for a lease only when the command line says virtkit.net=dhcp, the static user-networking address otherwise', () => {
    const script = renderInitScript({ ...options, acpi: false });
    execFileSync('busybox', ['sh', '-n', '-c', script]);
    // Run the choice on the host with /proc/cmdline and the commands replaced by echoes.
    const choice = (cmdline: string): string => {
      const body = script.slice(script.indexOf('if [ -e /sys/class/net/eth0 ]'), script.indexOf('\nfi\n', script.indexOf('if [ -e /sys/class/net/eth0 ]')) + 4)
        .replace('[ -e /sys/class/net/eth0 ]', 'true').replace('$(cat /proc/cmdline)', cmdline).replace('$(hostname)', 'g');
      return execFileSync('busybox', ['sh', '-c', `exec 3>&1; ip() { echo "ip $*"; }; udhcpc() { echo "udhcpc $*" >&3; }; ${body.replace('>/etc/resolv.conf', '>/dev/null')}`], { encoding: 'utf8' });
    };
    expect(choice('console=ttyS0 virtkit.net=dhcp quiet')).toMatch(/^udhcpc -b -i eth0 .*-s \/usr\/share\/udhcpc\/default\.script/m);
    expect(choice('console=ttyS0 virtkit.net=dhcp quiet')).not.toContain('10.0.2.15');
    expect(choice('console=ttyS0 virtkit.net=dhcpx')).toContain('ip addr add 10.0.2.15/24 dev eth0');
    expect(choice('console=ttyS0')).not.toContain('udhcpc');
  });

  it('the udhcpc script applies the address, the router and the DNS servers of a lease (in a namespace)', () => {
    const dir = mkdtempSync('/tmp/vk-udhcpc-');
    try {
      writeFileSync(join(dir, 'script'), renderUdhcpcScript());
      writeFileSync(join(dir, 'resolv.conf'), 'nameserver 10.0.2.3\n');
      const out = execFileSync('unshare', ['-n', '-m', 'sh', '-c', [
        `mount --bind ${dir}/resolv.conf /etc/resolv.conf`,
        // The namespace's own lo: this kernel may have no dummy or veth links to make.
        'ip link set lo up',
        `interface=lo ip=10.9.0.57 mask=24 router=10.9.0.1 dns="10.9.0.1 10.9.0.2" domain=lab sh ${dir}/script bound`,
        'ip -4 addr show dev lo; ip route show default',
      ].join('\n')], { encoding: 'utf8' });
      expect(out).toContain('inet 10.9.0.57/24');
      expect(out).toMatch(/default via 10\.9\.0\.1 dev lo/);
      expect(readFileSync(join(dir, 'resolv.conf'), 'utf8')).toBe('search lab\nnameserver 10.9.0.1\nnameserver 10.9.0.2\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
