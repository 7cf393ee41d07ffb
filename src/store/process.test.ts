/**
 * The store across processes: the state dir lock against a second process, crash
 * consistency under kill -9 at random moments, and the change feed hearing another
 * process's commits. The child processes run the real store code, transpiled once into a
 * temporary directory.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isVirtkitError } from '../util/errors.js';
import { SqliteBackend, StoreFileName, createStore, openStore, type StoreChange } from './index.js';

const srcRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
let buildDir: string;
const dirs: string[] = [];

/** Transpiles src/store and its one dependency to ESM JavaScript a plain `node` can run. */
function buildStoreForChildren(): string {
  const out = mkdtempSync(join(tmpdir(), 'virtkit-store-js-'));
  writeFileSync(join(out, 'package.json'), '{"type":"module"}');
  // The output sits outside the project, so point the one package import at its file.
  const sqlite = pathToFileURL(createRequire(import.meta.url).resolve('better-sqlite3')).href;
  const files = readdirSync(join(srcRoot, 'store')).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
    .map((f) => `store/${f}`).concat('util/errors.ts');
  for (const rel of files) {
    const { outputText } = ts.transpileModule(readFileSync(join(srcRoot, rel), 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    });
    mkdirSync(dirname(join(out, rel)), { recursive: true });
    writeFileSync(join(out, rel.replace(/\.ts$/, '.js')), outputText.replaceAll("'better-sqlite3'", `'${sqlite}'`));
  }
  return out;
}

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'virtkit-store-proc-'));
  dirs.push(dir);
  return dir;
}

/** Starts `node` on a script that gets `openStore` and the state dir; resolves once it prints "ready". */
function startChild(stateDir: string, body: string): Promise<ChildProcess> {
  const script = join(buildDir, `child-${Math.random().toString(36).slice(2)}.mjs`);
  writeFileSync(script, `import { openStore } from './store/index.js';\nconst stateDir = process.argv[2];\n${body}\n`);
  const child = spawn(process.execPath, [script, stateDir], { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready\n')) resolve(child);
    });
    child.once('exit', (code, signal) => reject(new Error(`child exited (${code ?? signal}) before ready: ${err}`)));
  });
}

function killAndWait(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

beforeAll(() => {
  buildDir = buildStoreForChildren();
});

afterAll(() => {
  for (const d of [...dirs, buildDir]) rmSync(d, { recursive: true, force: true });
});

describe('state dir lock', () => {
  it('refuses a second process, naming the owner, and frees the dir when the owner is killed', async () => {
    const dir = tempDir();
    const owner = await startChild(dir, `
      const store = openStore(stateDir);
      await store.write('/owner', String(process.pid));
      console.log('ready');
      setInterval(() => {}, 1000);`);
    try {
      let caught: unknown;
      try {
        openStore(dir);
      } catch (err) {
        caught = err;
      }
      expect(isVirtkitError(caught, 'store.locked'), String(caught)).toBe(true);
      expect((caught as { data: { pid?: number } }).data.pid).toBe(owner.pid);
      expect((caught as Error).message).toContain(`process ${owner.pid}`);
    } finally {
      await killAndWait(owner);
    }
    // The kernel dropped the dead owner's lock: no stale lock to clean up by hand.
    const store = openStore(dir);
    expect(await store.read('/owner')).toBe(String(owner.pid));
    await store.close();
  });
});

describe('crash consistency', () => {
  it('shows the old or the new state after kill -9 at random moments, never half a commit', async () => {
    const dir = tempDir();
    // Each transaction moves two counters together, adds item n, removes item n-5 and
    // rewrites a 4 KiB blob: any torn commit breaks one of the invariants below.
    const writer = `
      const store = openStore(stateDir);
      for (let commits = 0; ; commits++) {
        // Ready once this run has committed something, so every round makes progress.
        if (commits === 1) console.log('ready');
        await store.transaction(async (tx) => {
          const n = Number((await tx.read('/pair/a')) ?? '0') + 1;
          await tx.write('/pair/a', String(n));
          await tx.write('/pair/b', String(n));
          await tx.write('/items/' + n, String(n));
          await tx.rm('/items/' + (n - 5));
          await tx.write('/blob', String(n).padEnd(4096, '.'));
        });
      }`;
    let lastCount = 0;
    for (let round = 0; round < 10; round++) {
      const child = await startChild(dir, writer);
      await new Promise((resolve) => setTimeout(resolve, 5 + Math.random() * 120));
      await killAndWait(child);

      const store = openStore(dir);
      try {
        const a = Number((await store.read('/pair/a')) ?? '0');
        const b = Number((await store.read('/pair/b')) ?? '0');
        expect(b).toBe(a);
        expect(a).toBeGreaterThan(lastCount);
        lastCount = a;
        const items = (await store.list('/items')) ?? [];
        const expected = Array.from({ length: Math.min(a, 5) }, (_, i) => String(a - i)).sort();
        expect(items).toEqual(expected);
        if (a > 0) expect((await store.read('/blob'))!.startsWith(`${a}.`)).toBe(true);
        // The log agrees with the tree: the last change is the last commit's last write (commits apply in path order).
        if (a > 0) {
          expect(store.revision).toBeGreaterThan(0);
          const tail = await store.changesSince(store.revision - 1);
          expect(tail).toEqual([{ revision: store.revision, op: 'write', path: '/pair/b', value: String(a) }]);
        }
      } finally {
        await store.close();
      }
    }
  });
});

describe('crash consistency of grouped commits', () => {
  it('keeps every acknowledged commit of concurrent writers after kill -9, each transaction whole', async () => {
    const dir = tempDir();
    // 20 writers commit at once (their commits share fsyncs); each prints what it was told
    // is committed. A grouped commit may only be acknowledged once its group is durable.
    const writer = `
      const store = openStore(stateDir);
      let started = false;
      await Promise.all(Array.from({ length: 20 }, async (_, k) => {
        for (let n = 1; ; n++) {
          await store.transaction(async (tx) => {
            await tx.write('/w/' + k + '/a', String(n));
            await tx.write('/w/' + k + '/b', String(n));
          });
          process.stdout.write('ack ' + k + ' ' + n + '\\n');
          if (!started && n === 2) { started = true; console.log('ready'); }
        }
      }));`;
    for (let round = 0; round < 5; round++) {
      const child = await startChild(dir, writer);
      const acked = new Map<number, number>();
      let text = '';
      child.stdout!.on('data', (d: Buffer) => { text += d.toString(); });
      await new Promise((resolve) => setTimeout(resolve, 20 + Math.random() * 150));
      await killAndWait(child);
      for (const m of text.matchAll(/ack (\d+) (\d+)/g)) acked.set(Number(m[1]), Math.max(acked.get(Number(m[1])) ?? 0, Number(m[2])));
      // The run was acknowledged commits before it died: the check below has something to check.
      expect(acked.size).toBeGreaterThan(0);
      const store = openStore(dir);
      try {
        for (let k = 0; k < 20; k++) {
          const a = Number((await store.read(`/w/${k}/a`)) ?? '0');
          expect(Number((await store.read(`/w/${k}/b`)) ?? '0')).toBe(a);
          // Each run restarts n at 1; what this run acknowledged is on disk.
          if (acked.has(k)) expect(a).toBeGreaterThanOrEqual(acked.get(k)!);
        }
      } finally {
        await store.close();
      }
    }
  });
});

describe('crash consistency of defines', () => {
  it('leaves each domain whole or absent after kill -9 in the middle of defines and undefines', async () => {
    const dir = tempDir();
    // 10 writers at once, each defining a domain as the manager lays it out (5 leaves, its
    // UUID's entry, the event) and undefining the one before; each prints what was acknowledged.
    const writer = `
      const store = openStore(stateDir);
      let started = false;
      const uuid = (k, n) => '00000000-0000-4000-8000-' + String(k * 1000000 + n).padStart(12, '0');
      await Promise.all(Array.from({ length: 10 }, async (_, k) => {
        for (let n = 1; ; n++) {
          const name = 'd' + k + '-' + n;
          await store.transaction(async (tx) => {
            if (await tx.exists('/domain/' + name)) throw new Error('exists');
            await tx.write('/domain/' + name + '/uuid', uuid(k, n));
            await tx.write('/domain/' + name + '/definition', JSON.stringify({ name, uuid: uuid(k, n), pad: 'x'.repeat(500) }));
            await tx.write('/domain/' + name + '/status', '{"state":"shutoff"}');
            await tx.write('/domain/' + name + '/autostart', 'false');
            await tx.write('/domain/' + name + '/tainted', '[]');
            await tx.write('/uuid/' + uuid(k, n), name);
            await tx.write('/event', JSON.stringify({ type: 'defined', domain: name }));
          });
          process.stdout.write('defined ' + name + '\\n');
          if (n > 1) {
            const prev = 'd' + k + '-' + (n - 1);
            await store.transaction(async (tx) => {
              await tx.rm('/domain/' + prev);
              await tx.rm('/uuid/' + uuid(k, n - 1));
              await tx.write('/event', JSON.stringify({ type: 'undefined', domain: prev }));
            });
            process.stdout.write('undefined ' + prev + '\\n');
          }
          if (!started && n === 2) { started = true; console.log('ready'); }
        }
      }));`;
    for (let round = 0; round < 4; round++) {
      const child = await startChild(dir, writer);
      let text = '';
      child.stdout!.on('data', (d: Buffer) => { text += d.toString(); });
      await new Promise((resolve) => setTimeout(resolve, 20 + Math.random() * 150));
      await killAndWait(child);
      const defined = new Set([...text.matchAll(/^defined (\S+)$/gm)].map((m) => m[1]!));
      const undefinedNames = new Set([...text.matchAll(/^undefined (\S+)$/gm)].map((m) => m[1]!));
      expect(defined.size).toBeGreaterThan(0);
      const store = openStore(dir);
      try {
        const names = (await store.list('/domain')) ?? [];
        for (const name of names) {
          // Whole: every leaf, a definition naming it, and its UUID's entry pointing back.
          expect(await store.list(`/domain/${name}`)).toEqual(['autostart', 'definition', 'status', 'tainted', 'uuid']);
          const uuid = await store.readOrThrow(`/domain/${name}/uuid`);
          expect(JSON.parse(await store.readOrThrow(`/domain/${name}/definition`))).toMatchObject({ name, uuid });
          expect(await store.read(`/uuid/${uuid}`)).toBe(name);
        }
        for (const uuid of (await store.list('/uuid')) ?? []) {
          expect(names).toContain(await store.readOrThrow(`/uuid/${uuid}`));
        }
        // What this run was told is committed is on disk. A writer undefines a domain only after
        // its next define committed, so its newest define on disk is at least its last
        // acknowledged one; and no acknowledged undefine is undone.
        const newest = (names_: Iterable<string>, k: number): number =>
          Math.max(0, ...[...names_].filter((n) => n.startsWith(`d${k}-`)).map((n) => Number(n.split('-')[1])));
        for (let k = 0; k < 10; k++) expect(newest(names, k)).toBeGreaterThanOrEqual(newest(defined, k));
        for (const name of undefinedNames) expect(names).not.toContain(name);
        // The next run starts its names again at 1: clear the tree it would collide with.
        await store.rm('/domain');
        await store.rm('/uuid');
      } finally {
        await store.close();
      }
    }
  });
});

describe('change feed', () => {
  it('hears the commits of another process, in revision order, with their origin', async () => {
    const dir = tempDir();
    // This process follows first, through its own connection on the state dir's file;
    // the child then owns the dir as a daemon would and commits.
    const backend = new SqliteBackend(join(dir, StoreFileName), { shared: true, feedPollMs: 10 });
    const store = createStore(backend);
    const heard: StoreChange[] = [];
    const allHeard = new Promise<void>((resolve) => {
      store.watch('/domain', (change) => {
        heard.push(change);
        if (change.op === 'rm') resolve();
      });
    });
    const child = await startChild(dir, `
      const store = openStore(stateDir, { synchronous: 'normal' });
      await store.write('/domain/web1/state', 'running');
      await store.as({ pid: process.pid, client: 'child' }).transaction(async (tx) => {
        await tx.write('/domain/web1/state', 'paused');
        await tx.write('/event', 'suspended');
      });
      await store.rm('/domain/web1');
      console.log('ready');
      setInterval(() => {}, 1000);`);
    try {
      await allHeard;
      expect(heard).toEqual([
        { revision: 1, op: 'write', path: '/domain/web1/state', value: 'running' },
        { revision: 2, op: 'write', path: '/domain/web1/state', value: 'paused', origin: { pid: child.pid, client: 'child' } },
        { revision: 4, op: 'rm', path: '/domain/web1' },
      ]);
      expect(await store.changesSince(2, { prefix: '/event' })).toEqual([
        { revision: 3, op: 'write', path: '/event', value: 'suspended', origin: { pid: child.pid, client: 'child' } },
      ]);
    } finally {
      await killAndWait(child);
      await store.close();
    }
    expect(backend.feedPolling).toBe(false);
  });
});
