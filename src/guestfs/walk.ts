/**
 * Depth-first walk of a directory tree. Symlinks are reported, never descended into; a
 * directory reached twice (a hard-linked directory in a corrupt image) is not re-entered,
 * and depth is limited, so the walk ends on any image.
 */
import { VirtkitError } from '../util/errors.js';
import { joinPath, splitPath } from './fs/path.js';
import type { DirEntry, Filesystem } from './fs/types.js';

export interface WalkItem {
  /** Absolute path of the entry. */
  readonly path: string;
  readonly entry: DirEntry;
  /** 1 for the start directory's children. */
  readonly depth: number;
}

export interface WalkOptions {
  readonly maxDepth?: number;
}

export const DEFAULT_MAX_WALK_DEPTH = 512;

export async function* walkTree(fs: Filesystem, start: string, options: WalkOptions = {}): AsyncGenerator<WalkItem> {
  const maxDepth = options.maxDepth ?? DEFAULT_MAX_WALK_DEPTH;
  const visited = new Set<number>();
  const rootStat = await fs.stat(start);
  visited.add(rootStat.ino);
  const base = splitPath(start);
  async function* visit(names: string[], depth: number): AsyncGenerator<WalkItem> {
    if (depth > maxDepth) {
      throw new VirtkitError('fs.corrupt', `directory tree deeper than ${maxDepth} levels at ${joinPath(names)}`,
        { structure: 'directory tree', offset: 0, path: joinPath(names) });
    }
    const entries = await fs.readdir(joinPath(names));
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const childNames = [...names, entry.name];
      yield { path: joinPath(childNames), entry, depth };
      if (entry.type === 'directory') {
        if (entry.inode !== undefined) {
          if (visited.has(entry.inode)) continue;
          visited.add(entry.inode);
        }
        yield* visit(childNames, depth + 1);
      }
    }
  }
  yield* visit(base, 1);
}
