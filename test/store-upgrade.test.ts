/**
 * A state dir written before the store's schema 3 opens in the daemon with its domains: a
 * daemon (on the fake driver) defines and starts domains, its store.db is put back in the
 * schema 2 layout (nodes keyed by path, an index by parent, the revision in `meta`) with the
 * same rows, and a new daemon over that state dir lists them, shows their definitions and
 * state, and starts, stops and undefines them.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { connect } from '../src/client/index.js';
import { startDaemon, type RunningDaemon } from '../src/daemon/index.js';
import { FakeDomainDriver, FakeHost } from '../src/qemu/driver/fake-driver.js';

let dir: string;
let host: FakeHost;
let daemon: RunningDaemon | undefined;

const start = async (): Promise<RunningDaemon> =>
  startDaemon({ stateDir: join(dir, 'state'), logFile: join(dir, 'daemon.log'), driver: new FakeDomainDriver({ host }) });

const definition = (name: string): string =>
  `name: ${name}\nmemory: 64MiB\nboot:\n  loader: direct\n  kernel: ${process.execPath}\n`;

beforeEach(async () => {
  dir = await mkdtemp('/tmp/vk-upgrade-');
  host = new FakeHost();
  process.env.VIRTKIT_BOOT_ID = 'fake-boot';
});

afterEach(async () => {
  for (const g of host.liveGuests()) g.die();
  await daemon?.stop();
  daemon = undefined;
  delete process.env.VIRTKIT_BOOT_ID;
  await rm(dir, { recursive: true, force: true });
});

/** Rewrites a store file in the schema 2 layout, with the same nodes, log and revision. */
function toSchema2(file: string): void {
  const db = new Database(file);
  try {
    db.transaction(() => {
      const revision = db.prepare('SELECT max(revision) FROM changes').pluck().get() as number;
      db.exec(`
        CREATE TABLE nodes2 (path TEXT PRIMARY KEY, parent TEXT, value TEXT NOT NULL, mod_rev INTEGER NOT NULL,
          child_rev INTEGER NOT NULL) WITHOUT ROWID;
        INSERT INTO nodes2 SELECT path, parent, value, mod_rev, child_rev FROM nodes;
        DROP VIEW nodes;
        DROP TABLE tree;
        ALTER TABLE nodes2 RENAME TO nodes;
        CREATE INDEX nodes_by_parent ON nodes (parent, path);
        PRAGMA user_version = 2;`);
      db.prepare("UPDATE meta SET value = ? WHERE key = 'revision'").run(revision);
    })();
  } finally {
    db.close();
  }
}

it('a state dir of schema 2 opens with its domains, which list, start, stop and undefine', async () => {
  daemon = await start();
  let client = connect(daemon.dirs.socketPath);
  await client.define(definition('web'));
  await client.define(definition('db'));
  await client.setAutostart('db', true);
  const before = await client.list({ all: true });
  const webInfo = await client.info('web');
  const revision = (await client.daemonInfo()).revision;
  client.close();
  await daemon.stop();
  daemon = undefined;

  toSchema2(join(dir, 'state', 'store.db'));
  const check = new Database(join(dir, 'state', 'store.db'), { readonly: true });
  expect(check.pragma('user_version', { simple: true })).toBe(2);
  check.close();

  daemon = await start();
  client = connect(daemon.dirs.socketPath);
  try {
    expect(await client.list({ all: true })).toEqual(before);
    expect(await client.info('web')).toEqual(webInfo);
    expect((await client.info('db')).autostart).toBe(true);
    expect((await client.getDefinition('web')).text).toContain('name: web');
    // The revisions go on from where the old file was.
    expect((await client.daemonInfo()).revision).toBe(revision);
    expect(await client.start('web')).toMatchObject({ state: 'running' });
    await client.destroy('web');
    await client.undefine('web');
    expect((await client.list({ all: true })).domains.map((d) => d.name)).toEqual(['db']);
    expect((await client.daemonInfo()).revision).toBeGreaterThan(revision);
  } finally {
    client.close();
  }
});
