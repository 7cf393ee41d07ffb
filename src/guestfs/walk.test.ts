import { describe, expect, test } from 'vitest';
import { VirtkitError } from '../util/errors.js';
import type { DirEntry, DirRef, DirScan, FileStat, Filesystem } from './fs/types.js';
import { PREFETCH_ENTRIES, walkTree, walkTreeBatches } from './walk.js';

/**
 * A filesystem of numbered directories held in memory, scanned through `scandirs` as a
 * reader that batches does (each call's directories reported), for the walk's mechanism.
 */
class TreeFs {
  readonly calls: number[][] = [];
  constructor(private readonly dirs: Map<number, DirEntry[]>, private readonly broken = new Set<number>()) {}

  async stat(): Promise<FileStat> {
    return { type: 'directory', ino: 1 } as FileStat;
  }

  async scandir(): Promise<DirScan> {
    return { entries: this.dirs.get(1)!, damaged: [] };
  }

  async scandirs(refs: readonly DirRef[], maxBytes: number): Promise<(DirScan | Error)[]> {
    const take = maxBytes === 0 ? 1 : Math.min(refs.length, Math.max(1, Math.floor(maxBytes / 4096)));
    const nodes = refs.slice(0, take).map((r) => r.node!);
    this.calls.push(nodes);
    return nodes.map((n) => (this.broken.has(n)
      ? new VirtkitError('fs.corrupt', `directory ${n} is damaged`, { structure: 'test', offset: 0 })
      : { entries: this.dirs.get(n) ?? [], damaged: [] }));
  }

  asFilesystem(): Filesystem {
    return this as unknown as Filesystem;
  }
}

/** Root 1 with `top` directories, each with `sub` subdirectories holding one file. */
function wideTree(top: number, sub: number): Map<number, DirEntry[]> {
  const dirs = new Map<number, DirEntry[]>();
  let next = 2;
  const root: DirEntry[] = [];
  for (let a = 0; a < top; a++) {
    const ino = next++;
    root.push({ name: `d${a}`, type: 'directory', inode: ino });
    const children: DirEntry[] = [];
    for (let b = 0; b < sub; b++) {
      const child = next++;
      children.push({ name: `s${b}`, type: 'directory', inode: child });
      dirs.set(child, [{ name: 'f', type: 'file', inode: next++ }]);
    }
    dirs.set(ino, children);
  }
  dirs.set(1, root);
  return dirs;
}

describe('walkTreeBatches', () => {
  test('scans the subdirectories of a directory together, not one call each', async () => {
    const fs = new TreeFs(wideTree(10, 30));
    const paths: string[] = [];
    for await (const item of walkTree(fs.asFilesystem(), '/')) paths.push(item.path);
    expect(paths).toHaveLength(10 + 10 * 30 * 2);
    expect(paths.slice(0, 4)).toEqual(['/d0', '/d0/s0', '/d0/s0/f', '/d0/s1']);
    // 310 directories below the root in 11 calls: the root's 10 children, then each one's 30.
    expect(fs.calls).toHaveLength(11);
    expect(fs.calls.reduce((n, c) => n + c.length, 0)).toBe(310);
  });

  test('hands out the first items before it scans the rest of the tree', async () => {
    const fs = new TreeFs(wideTree(10, 30));
    const walk = walkTreeBatches(fs.asFilesystem(), '/');
    const first = await walk.next();
    expect(first.done).toBe(false);
    expect(fs.calls.flat().length).toBeLessThan(50);
    await walk.return(undefined);
  });

  test('a directory that cannot be read is reported with its path and the walk goes on', async () => {
    const dirs = wideTree(3, 2);
    const skipped: string[] = [];
    const fs = new TreeFs(dirs, new Set([2]));
    const paths: string[] = [];
    for await (const item of walkTree(fs.asFilesystem(), '/', { onSkip: (p, err) => skipped.push(`${p}: ${err.code}`) })) paths.push(item.path);
    expect(skipped).toEqual(['/d0: fs.corrupt']);
    expect(paths).toContain('/d1/s0/f');
    await expect(async () => {
      for await (const _ of walkTree(new TreeFs(dirs, new Set([2])).asFilesystem(), '/')) { /* strict: the first error ends it */ }
    }).rejects.toThrow('directory 2 is damaged');
  });

  test('what is scanned ahead stays bounded: past the limit, one directory per call', async () => {
    // Each top directory holds 1,000 entries; scanning many of them ahead would hold them all.
    const dirs = wideTree(140, 1000);
    const fs = new TreeFs(dirs);
    let n = 0;
    for await (const batch of walkTreeBatches(fs.asFilesystem(), '/')) {
      n += batch.length;
      if (n > 3000) break;
    }
    const rootCalls = fs.calls.filter((c) => c.some((ino) => dirs.get(1)!.some((e) => e.inode === ino)));
    const aheadEntries = rootCalls.flat().length * 1000;
    expect(aheadEntries).toBeLessThanOrEqual(2 * PREFETCH_ENTRIES + 128 * 1000);
    expect(rootCalls.flat().length).toBeLessThan(140);
  });
});
