import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { VirtkitError, isVirtkitError } from '../util/errors.js';
import { openStore, withRetry, type OpenStoreOptions, type SnoopRecord, type Store, type StoreChange } from './index.js';

const dirs: string[] = [];
const stores: Store[] = [];

afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'virtkit-store-'));
  dirs.push(dir);
  return dir;
}

function open(dir = tempDir(), options: OpenStoreOptions = {}): Store {
  const store = openStore(dir, options);
  stores.push(store);
  return store;
}

async function reopen(store: Store, dir: string, options: OpenStoreOptions = {}): Promise<Store> {
  await store.close();
  stores.splice(stores.indexOf(store), 1);
  return open(dir, options);
}

async function errorOf(p: Promise<unknown> | (() => unknown)): Promise<VirtkitError> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    if (isVirtkitError(err)) return err;
    throw err;
  }
  throw new Error('expected a VirtkitError, got success');
}

describe('basic operations', () => {
  it('writes, reads, lists and removes like xenstore', async () => {
    const s = open();
    expect(await s.list('/')).toEqual([]);
    await s.write('/domain/web1/state', 'running');
    // Parents are created implicitly with an empty value.
    expect(await s.read('/domain')).toBe('');
    expect(await s.read('/domain/web1')).toBe('');
    expect(await s.read('/domain/web1/state')).toBe('running');
    expect(await s.exists('/domain/web1')).toBe(true);
    await s.write('/domain/web1/definition', '{"name":"web1"}');
    await s.write('/domain/a-first/state', 'shutoff');
    await s.write('/domain/Zed/state', 'shutoff');
    expect(await s.list('/domain')).toEqual(['Zed', 'a-first', 'web1']);
    expect(await s.list('/domain/web1')).toEqual(['definition', 'state']);
    expect(await s.list('/')).toEqual(['domain']);
    // Overwrite keeps the children.
    await s.write('/domain/web1', 'dir-value');
    expect(await s.read('/domain/web1')).toBe('dir-value');
    expect(await s.list('/domain/web1')).toEqual(['definition', 'state']);
    // rm is recursive.
    expect(await s.rm('/domain/web1')).toBe(true);
    expect(await s.read('/domain/web1/state')).toBeUndefined();
    expect(await s.exists('/domain/web1')).toBe(false);
    expect(await s.list('/domain')).toEqual(['Zed', 'a-first']);
  });

  it('reports missing nodes as undefined, false or store.not-found', async () => {
    const s = open();
    expect(await s.read('/nope')).toBeUndefined();
    expect(await s.exists('/nope')).toBe(false);
    expect(await s.list('/nope')).toBeUndefined();
    expect(await s.rm('/nope')).toBe(false);
    const err = await errorOf(s.readOrThrow('/nope/deeper'));
    expect(err.code).toBe('store.not-found');
    expect(err.data).toEqual({ path: '/nope/deeper' });
    await s.write('/x', '');
    expect(await s.readOrThrow('/x')).toBe('');
  });

  it('mkdir creates empty nodes and leaves existing ones alone', async () => {
    const s = open();
    await s.mkdir('/a/b/c');
    expect(await s.read('/a/b/c')).toBe('');
    expect(await s.list('/a/b')).toEqual(['c']);
    const rev = s.revision;
    await s.write('/a/b', 'kept');
    await s.mkdir('/a/b');
    expect(await s.read('/a/b')).toBe('kept');
    expect(s.revision).toBe(rev + 1);
    await s.mkdir('/');
    expect(s.revision).toBe(rev + 1);
  });

  it('does not treat a sibling sharing a prefix as a descendant', async () => {
    const s = open();
    await s.write('/a/x', '1');
    await s.write('/ab/x', '2');
    await s.write('/a0', '3');
    await s.write('/a.b', '4');
    await s.rm('/a');
    expect(await s.list('/')).toEqual(['a.b', 'a0', 'ab']);
    expect(await s.read('/ab/x')).toBe('2');
  });

  it('refuses to write or remove the root', async () => {
    const s = open();
    expect((await errorOf(s.write('/', 'x'))).code).toBe('store.invalid-path');
    expect((await errorOf(s.rm('/'))).code).toBe('store.invalid-path');
    expect(await s.read('/')).toBe('');
  });

  it('rejects invalid paths on every operation without changing anything', async () => {
    const s = open();
    const bad = ['', 'a', 'a/b', '/a/', '//a', '/a//b', '/a/./b', '/a/../b', '/..', '/a b', '/a\n', '/é', `/${'x'.repeat(256)}`,
      `/${'y/'.repeat(600)}y`, '/a\u0000b'];
    for (const path of bad) {
      for (const op of [() => s.read(path), () => s.readOrThrow(path), () => s.exists(path), () => s.list(path),
        () => s.write(path, 'v'), () => s.mkdir(path), () => s.rm(path), () => s.watch(path, () => {})]) {
        const err = await errorOf(op);
        expect(err.code, `path ${JSON.stringify(path)}`).toBe('store.invalid-path');
        expect(typeof err.data.reason).toBe('string');
      }
    }
    expect((await errorOf(s.read(42 as unknown as string))).code).toBe('store.invalid-path');
    expect(s.revision).toBe(0);
    expect(await s.list('/')).toEqual([]);
  });

  it('checks values: strings, well-formed, bounded in size', async () => {
    const s = open(tempDir(), { maxValueBytes: 64 });
    await s.write('/v', 'ünïcödé ✓ 🐧');
    expect(await s.read('/v')).toBe('ünïcödé ✓ 🐧');
    await s.write('/v', 'x'.repeat(64));
    for (const value of [42, null, undefined, 'x'.repeat(65), '✓'.repeat(22), 'bad \uD800 surrogate']) {
      const err = await errorOf(s.write('/v', value as string));
      expect(err.code).toBe('argument.invalid');
    }
    expect(await s.read('/v')).toBe('x'.repeat(64));
  });

  it('counts one revision per committed change', async () => {
    const s = open();
    expect(s.revision).toBe(0);
    await s.write('/a', '1');
    expect(s.revision).toBe(1);
    await s.rm('/missing');
    await s.mkdir('/a');
    expect(s.revision).toBe(1);
    await s.transaction(async (tx) => {
      await tx.write('/b', '1');
      await tx.write('/c', '1');
      await tx.mkdir('/d');
    });
    expect(s.revision).toBe(4);
    await s.rm('/a');
    expect(s.revision).toBe(5);
  });

  it('keeps everything across a reopen', async () => {
    const dir = tempDir();
    let s = open(dir);
    await s.write('/domain/web1/state', 'running');
    await s.write('/domain/web2/state', 'paused');
    await s.rm('/domain/web2');
    s = await reopen(s, dir);
    expect(s.revision).toBe(3);
    expect(await s.list('/domain')).toEqual(['web1']);
    expect(await s.read('/domain/web1/state')).toBe('running');
    await s.write('/domain/web1/state', 'shutoff');
    expect(s.revision).toBe(4);
  });

  it('refuses use after close and a second open of the same state dir', async () => {
    const dir = tempDir();
    const s = open(dir);
    const err = await errorOf(() => openStore(dir));
    expect(err.code).toBe('store.locked');
    expect(err.data.pid).toBe(process.pid);
    expect(err.message).toContain('only one virtkit daemon');
    await s.close();
    expect((await errorOf(s.read('/a'))).code).toBe('internal');
    const again = open(dir);
    expect(await again.list('/')).toEqual([]);
  });

  it('gives a typed error for a state dir whose files are not a store, and keeps no lock', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'store.db'), 'this is not a database, it is a text file '.repeat(100));
    const err = await errorOf(() => openStore(dir));
    expect(err.code).toBe('internal');
    expect(err.message).toContain('store.db');
    expect(err.data.sqlite).toBe('SQLITE_NOTADB');
    const other = tempDir();
    writeFileSync(join(other, 'store.lock'), 'garbage '.repeat(100));
    expect((await errorOf(() => openStore(other))).message).toContain('store.lock');
    // The failed open released the lock: fixing the file is enough.
    writeFileSync(join(dir, 'store.db'), '');
    const s = open(dir);
    expect(await s.list('/')).toEqual([]);
  });
});

describe('transactions', () => {
  it('sees its own writes and commits them atomically', async () => {
    const s = open();
    await s.write('/domain/old/state', 'running');
    await s.write('/domain/keep/state', 'x');
    const result = await s.transaction(async (tx) => {
      await tx.write('/domain/new/state', 'defined');
      expect(await tx.read('/domain/new/state')).toBe('defined');
      expect(await tx.read('/domain/new')).toBe('');
      expect(await tx.list('/domain')).toEqual(['keep', 'new', 'old']);
      expect(await tx.rm('/domain/old')).toBe(true);
      expect(await tx.read('/domain/old/state')).toBeUndefined();
      expect(await tx.exists('/domain/old')).toBe(false);
      expect(await tx.list('/domain')).toEqual(['keep', 'new']);
      expect(await tx.list('/domain/old')).toBeUndefined();
      expect(await tx.rm('/domain/old')).toBe(false);
      // Others do not see the buffered writes.
      expect(await s.read('/domain/new/state')).toBeUndefined();
      expect(await s.read('/domain/old/state')).toBe('running');
      return 'done';
    });
    expect(result).toBe('done');
    expect(await s.list('/domain')).toEqual(['keep', 'new']);
    expect(await s.read('/domain/new/state')).toBe('defined');
  });

  it('replaces a removed subtree when it is written again in the same transaction', async () => {
    const s = open();
    await s.write('/a/old', '1');
    await s.write('/a', 'value');
    await s.transaction(async (tx) => {
      await tx.rm('/a');
      await tx.write('/a/new/leaf', '2');
      expect(await tx.read('/a')).toBe('');
      expect(await tx.list('/a')).toEqual(['new']);
      await tx.mkdir('/a/dir');
      expect(await tx.list('/a')).toEqual(['dir', 'new']);
    });
    expect(await s.read('/a')).toBe('');
    expect(await s.list('/a')).toEqual(['dir', 'new']);
    expect(await s.read('/a/old')).toBeUndefined();
  });

  it('creates a parent that outlives the write that made it', async () => {
    const s = open();
    await s.transaction(async (tx) => {
      await tx.write('/p/q/leaf', 'x');
      await tx.rm('/p/q/leaf');
      expect(await tx.list('/p/q')).toEqual([]);
    });
    expect(await s.list('/p/q')).toEqual([]);
    expect(await s.read('/p/q/leaf')).toBeUndefined();
  });

  it('applies nothing when the function throws', async () => {
    const s = open();
    await s.write('/a', '1');
    const boom = new Error('boom');
    await expect(s.transaction(async (tx) => {
      await tx.write('/a', '2');
      await tx.write('/b', '2');
      await tx.rm('/a');
      throw boom;
    })).rejects.toBe(boom);
    expect(await s.read('/a')).toBe('1');
    expect(await s.exists('/b')).toBe(false);
    expect(s.revision).toBe(1);
  });

  it('refuses use of a transaction after it finished', async () => {
    const s = open();
    let leaked: Parameters<Parameters<Store['transaction']>[0]>[0] | undefined;
    await s.transaction((tx) => { leaked = tx; });
    expect((await errorOf(leaked!.read('/a'))).code).toBe('internal');
    expect((await errorOf(leaked!.write('/a', 'x'))).code).toBe('internal');
  });

  it('fails the later of two interleaved transactions that read the same key', async () => {
    const s = open();
    await s.write('/counter', '0');
    let release!: () => void;
    const gate = new Promise<void>((resolve) => { release = resolve; });
    const slow = s.transaction(async (tx) => {
      const n = Number(await tx.read('/counter'));
      await gate; // the fast one commits meanwhile
      await tx.write('/counter', String(n + 1));
    });
    await s.transaction(async (tx) => {
      const n = Number(await tx.read('/counter'));
      await tx.write('/counter', String(n + 1));
    });
    release();
    const err = await errorOf(slow);
    expect(err.code).toBe('store.conflict');
    expect(err.data).toMatchObject({ retryable: true, path: '/counter' });
    expect(await s.read('/counter')).toBe('1');
  });

  it('conflicts on a listed directory whose children changed, and on a key that appeared', async () => {
    const s = open();
    await s.write('/domain/a/state', 'x');
    const listing = s.transaction(async (tx) => {
      const names = await tx.list('/domain');
      await Promise.resolve();
      await s.write('/domain/b/state', 'y'); // a concurrent define
      await tx.write('/count', String(names!.length));
    });
    expect((await errorOf(listing)).code).toBe('store.conflict');
    const absent = s.transaction(async (tx) => {
      expect(await tx.read('/domain/c/state')).toBeUndefined();
      await s.write('/domain/c/state', 'z');
      await tx.write('/domain/c/state', 'mine');
    });
    expect((await errorOf(absent)).code).toBe('store.conflict');
    expect(await s.read('/domain/c/state')).toBe('z');
    expect(await s.exists('/count')).toBe(false);
  });

  it('conflicts when a node read was removed with its parent', async () => {
    const s = open();
    await s.write('/domain/a/state', 'x');
    const p = s.transaction(async (tx) => {
      await tx.read('/domain/a/state');
      await s.rm('/domain');
      await tx.write('/other', '1');
    });
    expect((await errorOf(p)).code).toBe('store.conflict');
  });

  it('lets transactions on disjoint keys and blind writes both commit', async () => {
    const s = open();
    await s.write('/a', '0');
    await s.write('/b', '0');
    let release!: () => void;
    const gate = new Promise<void>((resolve) => { release = resolve; });
    const first = s.transaction(async (tx) => {
      await tx.read('/a');
      await gate;
      await tx.write('/a', '1');
      await tx.write('/shared', 'first');
    });
    await s.transaction(async (tx) => {
      await tx.read('/b');
      await tx.write('/b', '1');
      await tx.write('/shared', 'second');
    });
    release();
    await first;
    expect(await s.read('/a')).toBe('1');
    expect(await s.read('/b')).toBe('1');
    expect(await s.read('/shared')).toBe('first');
  });

  it('withRetry makes concurrent read-modify-write transactions serializable', async () => {
    const s = open(tempDir(), { synchronous: 'normal' });
    await s.write('/counter', '0');
    let conflicts = 0;
    const increment = () => withRetry(async () => {
      try {
        return await s.transaction(async (tx) => {
          const n = Number(await tx.read('/counter'));
          await new Promise((resolve) => setImmediate(resolve));
          await tx.write('/counter', String(n + 1));
        });
      } catch (err) {
        if (isVirtkitError(err, 'store.conflict')) conflicts++;
        throw err;
      }
    }, { attempts: 100, backoffMs: 1 });
    await Promise.all(Array.from({ length: 20 }, increment));
    expect(await s.read('/counter')).toBe('20');
    expect(conflicts).toBeGreaterThan(0);
  });

  it('keeps an invariant under many interleaved transfer transactions', async () => {
    const s = open(tempDir(), { synchronous: 'normal' });
    const accounts = 5;
    await s.transaction(async (tx) => {
      for (let i = 0; i < accounts; i++) await tx.write(`/bank/${i}`, '100');
    });
    let seed = 99;
    const rand = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };
    const pause = () => new Promise((resolve) => (rand() < 0.5 ? setImmediate(resolve) : queueMicrotask(() => resolve(undefined))));
    const transfer = async () => {
      const from = Math.floor(rand() * accounts);
      const to = (from + 1 + Math.floor(rand() * (accounts - 1))) % accounts;
      const amount = 1 + Math.floor(rand() * 10);
      await withRetry(() => s.transaction(async (tx) => {
        const a = Number(await tx.readOrThrow(`/bank/${from}`));
        await pause();
        const b = Number(await tx.readOrThrow(`/bank/${to}`));
        await pause();
        await tx.write(`/bank/${from}`, String(a - amount));
        await tx.write(`/bank/${to}`, String(b + amount));
      }), { attempts: 1000, backoffMs: 0.5 });
    };
    // Readers in transactions must always see a consistent total too.
    const audits: number[] = [];
    const audit = async () => {
      audits.push(await withRetry(() => s.transaction(async (tx) => {
        let total = 0;
        for (const name of (await tx.list('/bank'))!) {
          total += Number(await tx.readOrThrow(`/bank/${name}`));
          await pause();
        }
        return total;
      }), { attempts: 1000, backoffMs: 0.5 }));
    };
    await Promise.all([...Array.from({ length: 60 }, transfer), ...Array.from({ length: 10 }, audit)]);
    let total = 0;
    for (let i = 0; i < accounts; i++) total += Number(await s.read(`/bank/${i}`));
    expect(total).toBe(accounts * 100);
    expect(audits).toEqual(Array(10).fill(accounts * 100));
  });

  it('withRetry gives up after its attempts and never retries other errors', async () => {
    let runs = 0;
    const conflict = () => withRetry(async () => {
      runs++;
      throw new VirtkitError('store.conflict', 'lost a race', { retryable: true });
    }, { attempts: 3, backoffMs: 0 });
    expect((await errorOf(conflict())).code).toBe('store.conflict');
    expect(runs).toBe(3);
    runs = 0;
    const other = withRetry(async () => { runs++; throw new Error('not a conflict'); }, { attempts: 3 });
    await expect(other).rejects.toThrow('not a conflict');
    expect(runs).toBe(1);
  });

  it('runs onCommit callbacks with the revision, and not on conflict', async () => {
    const s = open();
    const seen: Array<[number, number]> = [];
    await s.transaction(async (tx) => {
      tx.onCommit((revision, changes) => seen.push([revision, changes.length]));
      await tx.write('/a', '1');
      await tx.write('/b', '1');
    });
    expect(seen).toEqual([[2, 2]]);
    const p = s.transaction(async (tx) => {
      tx.onCommit(() => seen.push([-1, -1]));
      await tx.read('/a');
      await s.write('/a', '2');
      await tx.write('/c', '1');
    });
    await errorOf(p);
    expect(seen).toHaveLength(1);
  });
});

describe('against a model', () => {
  /** The tree as a plain map, with xenstore's rules restated simply. */
  class Model {
    constructor(readonly nodes = new Map<string, string>([['/', '']])) {}
    clone(): Model { return new Model(new Map(this.nodes)); }
    private ensureParents(p: string): void {
      for (let q = p.slice(0, p.lastIndexOf('/')) || '/'; q !== '/' && !this.nodes.has(q); q = q.slice(0, q.lastIndexOf('/')) || '/') {
        this.nodes.set(q, '');
      }
    }
    write(p: string, v: string): void { this.ensureParents(p); this.nodes.set(p, v); }
    mkdir(p: string): void { this.ensureParents(p); if (!this.nodes.has(p)) this.nodes.set(p, ''); }
    rm(p: string): boolean {
      const had = this.nodes.has(p);
      for (const k of [...this.nodes.keys()]) if (k === p || k.startsWith(`${p}/`)) this.nodes.delete(k);
      return had;
    }
    list(p: string): string[] | undefined {
      if (!this.nodes.has(p)) return undefined;
      const prefix = p === '/' ? '/' : `${p}/`;
      return [...this.nodes.keys()].filter((k) => k !== '/' && k.startsWith(prefix) && !k.slice(prefix.length).includes('/'))
        .map((k) => k.slice(prefix.length)).sort();
    }
  }

  it('agrees with a plain model over random operations and transactions, warm and after reopen', async () => {
    let seed = 12345;
    const rand = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
    const randomPath = () => `/${Array.from({ length: 1 + Math.floor(rand() * 3) }, () => pick(['a', 'b', 'c'])).join('/')}`;
    const dir = tempDir();
    let s = open(dir, { synchronous: 'normal' });
    let model = new Model();
    type Ops = Pick<Store, 'read' | 'list' | 'write' | 'mkdir' | 'rm'>;
    const step = async (target: Ops, m: Model) => {
      const p = randomPath();
      const r = rand();
      if (r < 0.3) { const v = String(Math.floor(rand() * 100)); await target.write(p, v); m.write(p, v); }
      else if (r < 0.4) { await target.mkdir(p); m.mkdir(p); }
      else if (r < 0.55) expect(await target.rm(p)).toBe(m.rm(p));
      else if (r < 0.8) expect(await target.read(p)).toBe(m.nodes.get(p));
      else expect(await target.list(p)).toEqual(m.list(p));
    };
    for (let i = 0; i < 400; i++) {
      if (rand() < 0.3) {
        const copy = model.clone();
        const abort = rand() < 0.2;
        await s.transaction(async (tx) => {
          for (let j = Math.floor(rand() * 8); j > 0; j--) await step(tx, copy);
          if (abort) throw new VirtkitError('internal', 'abort');
        }).catch((err: unknown) => { if (!isVirtkitError(err, 'internal')) throw err; });
        if (!abort) model = copy;
      } else {
        await step(s, model);
      }
    }
    const dump = async (store: Store) => {
      const out = new Map<string, string>();
      const walk = async (p: string): Promise<void> => {
        out.set(p, (await store.read(p))!);
        for (const name of (await store.list(p))!) await walk(p === '/' ? `/${name}` : `${p}/${name}`);
      };
      await walk('/');
      return out;
    };
    expect(await dump(s)).toEqual(model.nodes);
    s = await reopen(s, dir);
    expect(await dump(s)).toEqual(model.nodes);
  });
});

describe('watches', () => {
  it('hears changes at and below the path, and removals of an ancestor, but nothing above or beside', async () => {
    const s = open();
    const heard: StoreChange[] = [];
    await s.write('/domain/web1/state', 'shutoff');
    const dispose = s.watch('/domain/web1', (c) => heard.push(c));
    await s.write('/domain/web1/state', 'running');
    await s.mkdir('/domain/web1/devices');
    await s.write('/domain/web1', 'v');
    await s.write('/domain/web10/state', 'x'); // a sibling sharing a prefix
    await s.write('/domain', 'above');
    await s.write('/other', 'x');
    await s.rm('/domain/web1/devices');
    await s.rm('/domain'); // removes the watched node too
    expect(heard).toEqual([
      { revision: 2, op: 'write', path: '/domain/web1/state', value: 'running' },
      { revision: 3, op: 'mkdir', path: '/domain/web1/devices' },
      { revision: 4, op: 'write', path: '/domain/web1', value: 'v' },
      { revision: 8, op: 'rm', path: '/domain/web1/devices' },
      { revision: 9, op: 'rm', path: '/domain' },
    ]);
    dispose();
    dispose();
    await s.write('/domain/web1/state', 'again');
    expect(heard).toHaveLength(5);
  });

  it('fires after commit, once per change of a transaction, never for an aborted one', async () => {
    const s = open();
    const heard: Array<[number, string | undefined]> = [];
    s.watch('/', async (c) => heard.push([c.revision, await s.read(c.path)]));
    await s.transaction(async (tx) => {
      await tx.write('/a', '1');
      await tx.write('/b', '2');
      expect(heard).toEqual([]);
    });
    await errorOf(s.transaction(async (tx) => {
      await tx.write('/c', '3');
      throw new VirtkitError('internal', 'abort');
    }));
    await new Promise((resolve) => setImmediate(resolve));
    expect(heard).toEqual([[1, '1'], [2, '2']]);
  });

  it('delivers in revision order when a watcher commits from its callback', async () => {
    const s = open();
    const first: number[] = [];
    const second: number[] = [];
    s.watch('/x', (c) => {
      first.push(c.revision);
      if (c.path === '/x/a') void s.write('/x/b', 'from watcher');
    });
    s.watch('/x', (c) => second.push(c.revision));
    await s.write('/x/a', '1');
    await new Promise((resolve) => setImmediate(resolve));
    expect(first).toEqual([1, 2]);
    expect(second).toEqual([1, 2]);
  });

  it('isolates a throwing watcher', async () => {
    const errors: unknown[] = [];
    const s = open(tempDir(), { onListenerError: (err) => errors.push(err) });
    const heard: number[] = [];
    s.watch('/', () => { throw new Error('watcher bug'); });
    s.watch('/', (c) => heard.push(c.revision));
    await s.write('/a', '1');
    expect(heard).toEqual([1]);
    expect(errors).toHaveLength(1);
    expect(await s.read('/a')).toBe('1');
  });

  it('resumes from a cursor: replays history, then live, with no gap or duplicate', async () => {
    const dir = tempDir();
    let s = open(dir);
    await s.write('/domain/a/state', 'defined');
    const cursor = s.revision;
    await s.write('/domain/a/state', 'running');
    await s.write('/unrelated', 'x');
    await s.write('/domain/b/state', 'defined');
    s = await reopen(s, dir);
    const heard: number[] = [];
    s.watch('/domain', (c) => heard.push(c.revision), { since: cursor });
    await s.write('/domain/a/state', 'paused'); // committed before the replay resolves
    await new Promise((resolve) => setImmediate(resolve));
    await s.write('/domain/b/state', 'running');
    expect(heard).toEqual([2, 4, 5, 6]);
  });

  it('reports store.compacted when the cursor is older than the log', async () => {
    const s = open(tempDir(), { historyLimit: 10, synchronous: 'normal' });
    for (let i = 0; i < 1020; i++) await s.write('/n', String(i));
    const err = await new Promise<unknown>((resolve) => {
      s.watch('/n', () => resolve('unexpected change'), { since: 1, onError: resolve });
    });
    expect(isVirtkitError(err, 'store.compacted')).toBe(true);
  });
});

describe('change log', () => {
  it('returns the changes after a revision, across reopen, filtered by prefix and paged', async () => {
    const dir = tempDir();
    let s = open(dir);
    await s.write('/domain/a/state', 'defined');
    await s.transaction(async (tx) => {
      await tx.write('/domain/a/state', 'running');
      await tx.write('/host/boot-id', 'abc');
    });
    await s.mkdir('/domain/b');
    await s.rm('/domain');
    s = await reopen(s, dir);
    expect(await s.changesSince(0)).toEqual([
      { revision: 1, op: 'write', path: '/domain/a/state', value: 'defined' },
      { revision: 2, op: 'write', path: '/domain/a/state', value: 'running' },
      { revision: 3, op: 'write', path: '/host/boot-id', value: 'abc' },
      { revision: 4, op: 'mkdir', path: '/domain/b' },
      { revision: 5, op: 'rm', path: '/domain' },
    ]);
    expect((await s.changesSince(2, { prefix: '/domain' })).map((c) => c.revision)).toEqual([4, 5]);
    // The removal of /domain concerns a reader of /domain/a/state.
    expect((await s.changesSince(0, { prefix: '/domain/a/state' })).map((c) => c.revision)).toEqual([1, 2, 5]);
    expect((await s.changesSince(0, { limit: 2 })).map((c) => c.revision)).toEqual([1, 2]);
    expect(await s.changesSince(5)).toEqual([]);
    expect((await errorOf(s.changesSince(6))).code).toBe('argument.invalid');
    expect((await errorOf(s.changesSince(-1))).code).toBe('argument.invalid');
    expect((await errorOf(s.changesSince(0, { prefix: 'bad' }))).code).toBe('store.invalid-path');
  });

  it('filters by prefix exactly: subtree and removed ancestors, not siblings sharing a prefix', async () => {
    const s = open();
    await s.write('/d/web1/state', '1');   // 1: in
    await s.write('/d/web10/state', '2');  // 2: sibling
    await s.write('/d/web1', 'v');         // 3: in
    await s.write('/d/web1-x', '3');       // 4: sibling ('-' sorts before '/')
    await s.rm('/d/web10');                // 5: another subtree's removal
    await s.rm('/e');                      // nothing to remove: not logged
    await s.write('/e/f', '4');            // 6: elsewhere
    await s.rm('/d');                      // 7: removes an ancestor
    expect((await s.changesSince(0, { prefix: '/d/web1' })).map((c) => c.revision)).toEqual([1, 3, 7]);
    expect((await s.changesSince(0, { prefix: '/' })).map((c) => c.revision)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect((await s.changesSince(0, { prefix: '/e' })).map((c) => c.revision)).toEqual([6]);
  });

  it('keeps a bounded log and says when a cursor fell off it', async () => {
    const dir = tempDir();
    let s = open(dir, { historyLimit: 50, synchronous: 'normal' });
    await s.transaction(async (tx) => {
      for (let i = 0; i < 1100; i++) await tx.write(`/k/${i}`, String(i));
    });
    expect(s.revision).toBe(1100);
    const err = await errorOf(s.changesSince(10));
    expect(err.code).toBe('store.compacted');
    expect(err.data).toEqual({ revision: 10, oldest: 1051 });
    s = await reopen(s, dir, { historyLimit: 50 });
    expect((await errorOf(s.changesSince(1049))).code).toBe('store.compacted');
    const tail = await s.changesSince(1050, { limit: 5000 });
    expect(tail).toHaveLength(50);
    expect(tail[0]!.revision).toBe(1051);
  });
});

describe('snoop', () => {
  it('reports every operation with its origin, transaction and result', async () => {
    const s = open();
    const records: SnoopRecord[] = [];
    const stop = s.onOperation((r) => records.push(r));
    const cli = s.as({ pid: 4711, client: 'virtkit' });
    expect(cli.origin).toEqual({ pid: 4711, client: 'virtkit' });
    await cli.write('/domain/web1/state', 'running');
    await cli.read('/domain/web1/state');
    await cli.read('/domain/web2/state');
    await cli.exists('/domain');
    await cli.list('/domain');
    await cli.mkdir('/domain/web1/devices');
    await cli.rm('/nothing');
    await errorOf(cli.read('bad'));
    const unwatch = cli.watch('/domain/web1', () => {});
    await s.transaction(async (tx) => {
      await tx.read('/domain/web1/state');
      await tx.write('/domain/web1/state', 'paused');
      await tx.rm('/domain/web1/devices');
    });
    await errorOf(cli.transaction(async (tx) => {
      await tx.read('/domain/web1/state');
      await s.write('/domain/web1/state', 'shutoff');
      await tx.write('/domain/web1/state', 'running');
    }));
    await expect(cli.transaction(() => { throw new Error('abandon'); })).rejects.toThrow('abandon');
    unwatch();
    stop();
    await cli.read('/domain');
    const strip = records.map(({ time, ...r }) => {
      expect(typeof time).toBe('number');
      return r;
    });
    const o = { pid: 4711, client: 'virtkit' };
    expect(strip).toEqual([
      { origin: o, tx: '-', op: 'write', path: '/domain/web1/state', value: 'running', result: 'OK', revision: 1 },
      { origin: o, tx: '-', op: 'read', path: '/domain/web1/state', value: 'running', result: 'OK' },
      { origin: o, tx: '-', op: 'read', path: '/domain/web2/state', result: 'ENOENT' },
      { origin: o, tx: '-', op: 'exists', path: '/domain', value: 'true', result: 'OK' },
      { origin: o, tx: '-', op: 'list', path: '/domain', value: 'web1', result: 'OK' },
      { origin: o, tx: '-', op: 'mkdir', path: '/domain/web1/devices', result: 'OK', revision: 2 },
      { origin: o, tx: '-', op: 'rm', path: '/nothing', result: 'ENOENT' },
      { origin: o, tx: '-', op: 'read', path: 'bad', result: 'EINVAL' },
      { origin: o, tx: '-', op: 'watch', path: '/domain/web1', result: 'OK' },
      { origin: {}, tx: 1, op: 'tx-start', result: 'OK' },
      { origin: {}, tx: 1, op: 'read', path: '/domain/web1/state', value: 'running', result: 'OK' },
      { origin: {}, tx: 1, op: 'write', path: '/domain/web1/state', value: 'paused', result: 'OK' },
      { origin: {}, tx: 1, op: 'rm', path: '/domain/web1/devices', result: 'OK' },
      { origin: {}, tx: 1, op: 'commit', result: 'OK', revision: 4 },
      { origin: o, tx: '-', op: 'watch-event', path: '/domain/web1/devices', result: 'OK', revision: 3 },
      { origin: o, tx: '-', op: 'watch-event', path: '/domain/web1/state', value: 'paused', result: 'OK', revision: 4 },
      { origin: o, tx: 2, op: 'tx-start', result: 'OK' },
      { origin: o, tx: 2, op: 'read', path: '/domain/web1/state', value: 'paused', result: 'OK' },
      { origin: {}, tx: '-', op: 'write', path: '/domain/web1/state', value: 'shutoff', result: 'OK', revision: 5 },
      { origin: o, tx: '-', op: 'watch-event', path: '/domain/web1/state', value: 'shutoff', result: 'OK', revision: 5 },
      { origin: o, tx: 2, op: 'write', path: '/domain/web1/state', value: 'running', result: 'OK' },
      { origin: o, tx: 2, op: 'commit', path: '/domain/web1/state', result: 'EAGAIN' },
      { origin: o, tx: 3, op: 'tx-start', result: 'OK' },
      { origin: o, tx: 3, op: 'abort', result: 'OK' },
      { origin: o, tx: '-', op: 'unwatch', path: '/domain/web1', result: 'OK' },
    ]);
  });
});
