/**
 * A ScenarioContext on the fake driver: a real SQLite store in a temp dir, a Manager over a
 * FakeDomainDriver, and a FakeHost that outlives managers (daemon restarts).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyBaseLogger } from 'fastify';
import YAML from 'yaml';
import { Manager } from '../../src/daemon/manager.js';
import { reconcile } from '../../src/daemon/reconcile.js';
import { FakeDomainDriver, FakeHost, type FakeGuest } from '../../src/qemu/driver/fake-driver.js';
import { openStore, type Origin, type Store } from '../../src/store/index.js';
import { typeOnConsole, type ScenarioContext } from './manager-scenarios.js';

export interface FakeContext extends ScenarioContext {
  readonly host: FakeHost;
  readonly dir: string;
  readonly log: FastifyBaseLogger;
  /** The fake QEMU running `name`. */
  guest(name: string): FakeGuest;
  /** The definition text `define` would use. */
  definitionText(name: string, overrides?: Record<string, unknown>): string;
  cleanup(): Promise<void>;
}

const log = Fastify({ logger: false }).log;

export async function fakeContext(): Promise<FakeContext> {
  const dir = await mkdtemp(join(tmpdir(), 'vk-fake-'));
  await writeFile(join(dir, 'vmlinuz'), 'kernel');
  await writeFile(join(dir, 'initrd.img'), 'initrd');
  const host = new FakeHost();
  const stateDir = join(dir, 'state');
  const runRoot = join(dir, 'run');
  const origin: Origin = { client: 'test', pid: process.pid };
  const newManager = (store: Store): Manager => new Manager({ store, runRoot, log, driver: new FakeDomainDriver({ host }) });
  let store = openStore(stateDir);
  let manager = newManager(store);
  const guest = (name: string): FakeGuest => {
    const g = host.guestNamed(name);
    if (!g) throw new Error(`no fake guest runs ${name}`);
    return g;
  };
  const definitionText = (name: string, overrides: Record<string, unknown> = {}): string =>
    YAML.stringify({ name, memory: '128MiB', boot: { loader: 'direct', kernel: 'vmlinuz', initrd: 'initrd.img' }, shutdown_timeout: 5, ...overrides });
  return {
    kind: 'fake',
    host,
    dir,
    log,
    origin,
    forcedShutdownTimeout: 0.05,
    get manager() { return manager; },
    get store() { return store; },
    guest,
    definitionText,
    async define(name, opts = {}) {
      if (opts.ignoresPowerButton) host.ignorePowerButton.add(name);
      await manager.define(origin, { text: definitionText(name, opts.overrides), baseDir: dir });
    },
    type: (name, text) => typeOnConsole(manager, name, text),
    async panic(name) { guest(name).panic(); },
    async killQemu(name) { guest(name).die(); },
    async restartManager(opts = {}) {
      await manager.settled();
      if (opts.crash) host.dropAllHandles();
      else manager.detachAll();
      await store.close();
      await opts.meanwhile?.();
      store = openStore(stateDir);
      manager = newManager(store);
      await reconcile(manager, store, log);
    },
    async waitFor(what, fn) {
      const deadline = Date.now() + 10_000;
      for (;;) {
        await manager.settled();
        if (await fn()) return;
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 2));
      }
    },
    async cleanup() {
      for (const g of host.liveGuests()) g.die();
      await manager.settled();
      manager.detachAll();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
