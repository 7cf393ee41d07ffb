/**
 * The manager with real guests under TCG: the full lifecycle through the CLI, the console,
 * kill -9 of the daemon at several points with re-attachment and no orphans, guest-initiated
 * power-off seen as an event, and host-shutdown with a guest that ignores ACPI. The tests run
 * in order and share guests: four boots in all.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Duplex } from 'node:stream';
import type { DomainEvent, DomainInfo, HostShutdownResult } from '../../src/api/schemas.js';
import { isVirtkitError } from '../../src/util/errors.js';
import { testGuestDefinition, testGuestNoAcpiDefinition } from '../helpers/guests.js';
import { DaemonHarness, countOf, waitFor } from './daemon-harness.js';

const Ready = 'virtkit-guest: ready';
const G = 'testguest';
let d: DaemonHarness;

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function readyCount(name: string): Promise<number> {
  return countOf(await d.client().consoleLog(name), Ready);
}

function collect(stream: Duplex): { text: () => string } {
  let text = '';
  stream.on('data', (c: Buffer) => { text += c.toString(); });
  return { text: () => text };
}

async function expectFailsWith(p: Promise<unknown>, code: string): Promise<void> {
  try {
    await p;
  } catch (err) {
    expect(isVirtkitError(err) ? err.code : String(err)).toBe(code);
    return;
  }
  throw new Error(`expected ${code}`);
}

beforeAll(async () => {
  d = await DaemonHarness.create();
  await d.start();
});

afterAll(async () => {
  await d.cleanup();
});

// Generous per-test bounds: guests boot under TCG on shared cores, next to other test files.
describe.sequential('guest lifecycle through the daemon', { timeout: 300_000 }, () => {
  it('runs the full lifecycle through the CLI', async () => {
    expect((await d.cli(['define', testGuestDefinition()])).code).toBe(0);
    const start = await d.cli(['start', G]);
    expect(start.stderr).not.toContain('error');
    expect(start.code).toBe(0);
    const list = JSON.parse((await d.cli(['list', '--json'])).stdout) as { name: string; state: string }[];
    expect(list).toEqual([expect.objectContaining({ name: G, state: 'running' })]);
    const info = JSON.parse((await d.cli(['dominfo', G, '--json'])).stdout) as DomainInfo;
    expect(info).toMatchObject({ name: G, state: 'running', memory: 128 * 1024 * 1024, vcpus: 1, autostart: false, tainted: [] });
    expect(info.uuid).toMatch(/^[0-9a-f-]{36}$/);
    expect(isAlive(info.pid!)).toBe(true);
    await d.waitConsole(G, Ready);

    expect((await d.cli(['suspend', G])).code).toBe(0);
    expect((await d.cli(['domstate', G])).stdout.trim()).toBe('paused');
    expect((await d.cli(['resume', G])).code).toBe(0);
    expect(JSON.parse((await d.cli(['domstate', G, '--json'])).stdout)).toEqual({ state: 'running' });

    const again = await d.cli(['start', G]);
    expect(again.code).toBe(4);
    expect(again.stderr).toContain('domain.invalid-state');
    const undefine = await d.cli(['undefine', G]);
    expect(undefine.code).toBe(4);

    // Editing a field that cannot change while running is refused, naming the field.
    const edit = await d.cli(['edit', G], { env: { EDITOR: 'sed -i "s/^memory:.*/memory: 268435456/"' } });
    expect(edit.code).toBe(4);
    expect(edit.stderr).toContain('domain.field-immutable');
    expect(edit.stderr).toContain('memory');
    expect((await d.cli(['dumpdef', G])).stdout).toMatch(/^memory: /m);

    const qmp = await d.cli(['qemu-monitor-command', G, '{"execute":"query-status"}', '--json']);
    expect(JSON.parse(qmp.stdout)).toMatchObject({ status: 'running', running: true });
    const hmp = await d.cli(['qemu-monitor-command', G, '--hmp', 'info name']);
    expect(hmp.stdout.trim()).toBe(G);
    // HMP answers its errors as text: they are errors here, with QEMU's words and a non-zero exit.
    const bogus = await d.cli(['qemu-monitor-command', G, '--hmp', 'bogus']);
    expect(bogus.code).toBe(6);
    expect(bogus.stderr).toContain('qmp.command-failed');
    expect(bogus.stderr).toContain('bogus');
    const tainted = JSON.parse((await d.cli(['dominfo', G, '--json'])).stdout) as DomainInfo;
    expect(tainted.tainted).toEqual(['custom-monitor']);
    expect((await d.cli(['dominfo', G])).stdout).toMatch(/Tainted:\s+custom-monitor/);

    // CPUs stopped behind the daemon's back (a raw monitor command) show up in its state.
    const c = d.client();
    expect((await d.cli(['qemu-monitor-command', G, '{"execute":"stop"}'])).code).toBe(0);
    await waitFor('the state to follow a monitor "stop"', async () => (await c.state(G)).state === 'paused', 10_000);
    expect((await d.cli(['qemu-monitor-command', G, '{"execute":"cont"}'])).code).toBe(0);
    await waitFor('the state to follow a monitor "cont"', async () => (await c.state(G)).state === 'running', 10_000);
  });

  it('multiplexes the console: readers watch, one writer types, the log survives a detach', async () => {
    const c = d.client();
    const writer = await c.openConsole(G, 'write');
    const reader = await c.openConsole(G, 'read');
    const seen = collect(reader);
    await expectFailsWith(c.openConsole(G, 'write'), 'domain.invalid-state');
    writer.write('echo console-$((6*7))-marker; printf \'\\033]0;guest-title\\007\\n\'\n');
    await waitFor('the reader to see the command output', async () => seen.text().includes('console-42-marker') && seen.text().includes('\x1b]0;guest-title'), 30_000);
    writer.destroy();
    reader.destroy();
    const log = await d.cli(['console', G, '--log']);
    expect(log.stdout).toContain('console-42-marker');
    expect(log.stdout).toContain(Ready);
    // What the guest printed is shown, not obeyed: no control character reaches the terminal.
    expect(log.stdout).toContain('\\e]0;guest-title\\x07');
    expect(log.stdout).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f]/);
    expect((await d.cli(['console', G, '--log', '--raw'])).stdout).toContain('\x1b]0;guest-title\x07');
    // The writer's place is free again after it detached.
    const next = await waitFor('a new writer', async () => c.openConsole(G, 'write'), 5000);
    next.destroy();
  });

  it('survives SIGTERM and kill -9 of the daemon: the guest keeps running and is re-attached', async () => {
    const c = d.client();
    const { pid } = await c.info(G);
    await d.stop();
    expect(isAlive(pid!)).toBe(true);
    await d.start();
    expect(await c.info(G)).toMatchObject({ state: 'running', pid });
    await d.kill9();
    expect(isAlive(pid!)).toBe(true);
    await d.start();
    expect(await c.info(G)).toMatchObject({ state: 'running', pid });
    expect((await d.qemuPids()).map((p) => p.pid)).toEqual([pid]);
    // The console still works through the new daemon, with the history from before.
    expect(await c.consoleLog(G)).toContain('console-42-marker');
    const w = await c.openConsole(G, 'write');
    const out = collect(w);
    w.write('echo after-$((1+1))-restart\n');
    await waitFor('console output after the restart', async () => out.text().includes('after-2-restart'), 30_000);
    w.destroy();
  });

  it('records a guest-initiated power-off as a stopped event', async () => {
    const c = d.client();
    const cursor = (await c.daemonInfo()).revision;
    const ac = new AbortController();
    const events: DomainEvent[] = [];
    const following = (async () => {
      for await (const ev of c.events({ since: cursor, signal: ac.signal })) {
        events.push(ev);
        if (ev.type === 'stopped') ac.abort();
      }
    })();
    const w = await c.openConsole(G, 'write');
    w.write('poweroff -f\n');
    await following;
    w.destroy();
    expect(events.at(-1)).toMatchObject({ type: 'stopped', domain: G, reason: 'shutdown' });
    expect(await c.state(G)).toEqual({ state: 'shutoff', reason: 'shutdown' });
    expect(await d.qemuPids()).toEqual([]);
  });

  it('kill -9 right after QEMU spawned: the restarted daemon adopts that QEMU, no second one', async () => {
    const c = d.client();
    const before = await readyCount(G);
    await d.stop();
    await d.start({ VIRTKIT_CRASH_AT: 'start.spawned' });
    await expectFailsWith(c.start(G), 'connection.failed');
    await d.waitCrashed();
    const orphanCandidates = await d.qemuPids();
    expect(orphanCandidates).toHaveLength(1);
    await d.start();
    const info = await c.info(G);
    expect(info.state).toBe('running');
    expect(info.pid).toBe(orphanCandidates[0]!.pid);
    expect((await d.qemuPids()).map((p) => p.pid)).toEqual([info.pid]);
    const events: DomainEvent[] = [];
    for await (const ev of c.events({ since: 0, follow: false })) events.push(ev);
    expect(events.at(-1)).toMatchObject({ type: 'started', domain: G, reason: 'recovered' });
    await d.waitConsole(G, Ready, before);
    // A clean reboot (ACPI power-off caught, reset, resume) and a hard reset both restart the
    // guest in place: same QEMU, ready again, still running.
    const reboot = await d.cli(['reboot', G]);
    expect(reboot.stderr).not.toContain('error');
    expect(reboot.code).toBe(0);
    await d.waitConsole(G, Ready, before + 1);
    expect((await d.cli(['reset', G])).code).toBe(0);
    await d.waitConsole(G, Ready, before + 2);
    expect(await c.info(G)).toMatchObject({ state: 'running', pid: info.pid });
    const kinds: string[] = [];
    for await (const ev of c.events({ since: 0, follow: false })) if (ev.domain === G) kinds.push(ev.type);
    expect(kinds.slice(-2)).toEqual(['rebooted', 'reset']);
  });

  it('kill -9 during a shutdown: after restart the guest is recorded stopped and nothing is left', async () => {
    const c = d.client();
    await d.stop();
    await d.start({ VIRTKIT_CRASH_AT: 'shutdown.requested' });
    await expectFailsWith(c.shutdown(G), 'connection.failed');
    await d.waitCrashed();
    // The ACPI guest powers off on its own while no daemon watches.
    await waitFor('the guest to power off', async () => (await d.qemuPids()).length === 0, 60_000, 250);
    await d.start();
    const state = await c.state(G);
    expect(state.state).not.toBe('running');
    expect(['shutoff', 'crashed']).toContain(state.state);
    expect(await d.qemuPids()).toEqual([]);
  });

  it('kill -9 after "starting" was recorded but before QEMU spawned: start recorded as failed', async () => {
    const c = d.client();
    await d.stop();
    await d.start({ VIRTKIT_CRASH_AT: 'start.recorded' });
    await expectFailsWith(c.start(G), 'connection.failed');
    await d.waitCrashed();
    await d.start();
    expect(await c.state(G)).toEqual({ state: 'shutoff', reason: 'failed' });
    expect(await d.qemuPids()).toEqual([]);
  });

  it('host-shutdown stops guests in parallel: ACPI guest cleanly, the one ignoring ACPI by force', async () => {
    const c = d.client();
    await d.stop();
    await d.start();
    expect((await d.cli(['define', testGuestNoAcpiDefinition()])).code).toBe(0);
    const before = await readyCount(G);
    await c.start(G);
    await c.start('testguest-noacpi');
    await Promise.all([d.waitConsole(G, Ready, before), d.waitConsole('testguest-noacpi', Ready)]);
    const r = await d.cli(['host-shutdown', '--timeout', '5', '--json']);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as HostShutdownResult;
    const byName = Object.fromEntries(report.domains.map((x) => [x.name, x]));
    expect(byName[G]).toMatchObject({ policy: 'shutdown', outcome: 'clean' });
    expect(byName['testguest-noacpi']).toMatchObject({ policy: 'shutdown', outcome: 'forced' });
    expect((await c.state(G)).state).toBe('shutoff');
    expect((await c.state('testguest-noacpi')).state).toBe('shutoff');
    expect(await d.qemuPids()).toEqual([]);
  });
});
