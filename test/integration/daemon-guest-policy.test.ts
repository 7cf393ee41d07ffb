/**
 * The manager carries out the definition's policy when the guest powers itself off and QEMU
 * keeps it: `on_poweroff: restart` resets and resumes the same QEMU (a `rebooted` event, the
 * guest boots again); a later host-requested shutdown still ends it. One guest boot, one reboot.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import type { DomainEvent } from '../../src/api/schemas.js';
import { guestPaths, testGuest } from '../helpers/guests.js';
import { DaemonHarness, countOf } from './daemon-harness.js';

const G = 'restarter';
const READY = 'virtkit-guest: ready';
let d: DaemonHarness;

beforeAll(async () => {
  d = await DaemonHarness.create();
  const def = parse(readFileSync(guestPaths(testGuest()).definitionPath, 'utf8')) as Record<string, unknown>;
  const boot = def.boot as Record<string, string>;
  Object.assign(def, {
    name: G,
    on_poweroff: 'restart',
    boot: { ...boot, kernel: join(testGuest(), boot.kernel!), initrd: join(testGuest(), boot.initrd!) },
  });
  const path = join(d.stateDir, `${G}.yaml`);
  writeFileSync(path, stringify(def));
  await d.start();
  expect((await d.cli(['define', path])).code).toBe(0);
});

afterAll(async () => {
  await d.cleanup();
});

it('on_poweroff: restart boots the guest again in the same QEMU', async () => {
  const c = d.client();
  const started = await c.start(G);
  await d.waitConsole(G, READY);
  const cursor = (await c.daemonInfo()).revision;
  const ac = new AbortController();
  const events: DomainEvent[] = [];
  const following = (async () => {
    for await (const ev of c.events({ since: cursor, signal: ac.signal })) {
      events.push(ev);
      if (ev.type === 'rebooted' || ev.type === 'stopped') ac.abort();
    }
  })();
  const w = await c.openConsole(G, 'write');
  w.write('poweroff -f\n');
  await following;
  w.destroy();
  expect(events.at(-1)).toMatchObject({ type: 'rebooted', domain: G, reason: 'poweroff-restart' });
  await d.waitConsole(G, READY, 1);
  expect(countOf(await c.consoleLog(G), READY)).toBe(2);
  const info = await c.info(G);
  expect(info).toMatchObject({ state: 'running', pid: started.pid });

  // The manager's own shutdown is not undone by the restart policy.
  expect((await d.cli(['shutdown', G, '--timeout', '30'])).code).toBe(0);
  expect(await c.state(G)).toMatchObject({ state: 'shutoff' });
  expect(await d.qemuPids()).toEqual([]);
});
