/**
 * The manager scenarios of test/scenarios/manager-scenarios.ts on real QEMU: an in-process
 * Manager over QemuDomainDriver and a real store, guest kit guests under TCG (the no-ACPI one
 * where a scenario needs a guest deaf to the power button). The same list runs on the fake in
 * src/daemon/manager-scenarios.test.ts: a behaviour of the fake the real driver does not share
 * fails here. A scenario that needs what a guest kit guest cannot do would be skipped.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, it } from 'vitest';
import YAML from 'yaml';
import { Manager } from '../../src/daemon/manager.js';
import { qemuProcessesUnder, reconcile } from '../../src/daemon/reconcile.js';
import { QemuDomainDriver } from '../../src/qemu/driver/qemu-driver.js';
import { openStore, type Origin, type Store } from '../../src/store/index.js';
import { guestPaths, testGuest, testGuestNoAcpi } from '../helpers/guests.js';
import { scenarios, typeOnConsole, type Capability, type ScenarioContext } from '../scenarios/manager-scenarios.js';

/**
 * What a guest kit guest can do: it loads pvpanic, so a kernel panic (`echo c >
 * /proc/sysrq-trigger`) reaches QEMU as GUEST_PANICKED.
 */
const Capabilities = new Set<Capability>(['panic']);

const log = Fastify({ logger: false }).log;
let dir: string;
let store: Store;
let manager: Manager;
let ctx: ScenarioContext;

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function baseDefinition(guestDir: string): Record<string, unknown> {
  return YAML.parse(readFileSync(guestPaths(guestDir).definitionPath, 'utf8')) as Record<string, unknown>;
}

beforeAll(async () => {
  dir = await mkdtemp('/tmp/vkms-');
  const stateDir = join(dir, 'state');
  const runRoot = join(dir, 'run');
  const cacheDir = join(dir, 'cache');
  const origin: Origin = { client: 'test', pid: process.pid };
  const newManager = (): Manager => new Manager({ store, runRoot, log, driver: new QemuDomainDriver({ cacheDir }) });
  store = openStore(stateDir);
  manager = newManager();
  ctx = {
    kind: 'qemu',
    origin,
    forcedShutdownTimeout: 5,
    get manager() { return manager; },
    get store() { return store; },
    async define(name, opts = {}) {
      const guestDir = opts.ignoresPowerButton ? testGuestNoAcpi() : testGuest();
      const text = YAML.stringify({ ...baseDefinition(guestDir), name, ...opts.overrides });
      await manager.define(origin, { text, baseDir: guestDir });
    },
    type: (name, text) => typeOnConsole(manager, name, text),
    panic: (name) => typeOnConsole(manager, name, 'echo c > /proc/sysrq-trigger\n'),
    async killQemu(_name, pid) {
      process.kill(pid, 'SIGKILL');
      while (isAlive(pid)) await sleep(50);
    },
    async restartManager(opts = {}) {
      // In-process, a "crashed" daemon still has to let go of QMP (QEMU serves one client at
      // a time); what the next manager sees is the same either way.
      manager.detachAll();
      await store.close();
      await opts.meanwhile?.();
      store = openStore(stateDir);
      manager = newManager();
      await reconcile(manager, store, log);
    },
    async waitFor(what, fn) {
      const deadline = Date.now() + 120_000;
      for (;;) {
        await manager.settled();
        if (await fn()) return;
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await sleep(100);
      }
    },
  };
});

afterAll(async () => {
  manager?.detachAll();
  await store?.close();
  for (const { pid } of await qemuProcessesUnder(join(dir, 'run'))) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  }
  await rm(dir, { recursive: true, force: true });
});

// Generous bounds: every scenario boots one to three guests under TCG on shared cores.
describe.sequential('manager scenarios on QEMU', { timeout: 300_000 }, () => {
  for (const s of scenarios) {
    const runnable = (s.needs ?? []).every((c) => Capabilities.has(c));
    (runnable ? it : it.skip)(s.name, () => s.run(ctx));
  }
});
