/**
 * Depth-first walk of a directory tree. Symlinks are reported, never descended into; a
 * directory reached twice (a hard-linked directory in a corrupt image) is not re-entered,
 * and depth is limited, so the walk ends on any image.
 *
 * Like `ls -R` and `find`, a walk given `onSkip` goes on past a damaged subtree: a directory
 * that cannot be read, or the damaged part of one, is handed to `onSkip` with its path and
 * typed error, and everything else is still listed. Without `onSkip` (or with `strict`) the
 * first error ends the walk.
 */
import { VirtkitError, isVirtkitError } from '../util/errors.js';
import { joinPath, splitPath } from './fs/path.js';
import type { DirEntry, Filesystem } from './fs/types.js';

export interface WalkItem {
  /** Absolute path of the entry, for display (a name may contain `/`). */
  readonly path: string;
  /** The path's components, start directory's included (names may contain `/`). */
  readonly names: readonly string[];
  /** A path that reaches the entry: `path`, or one from `#inode` when a name on the way contains `/`. */
  readonly locator: string;
  readonly entry: DirEntry;
  /** 1 for the start directory's children. */
  readonly depth: number;
}

export interface WalkOptions {
  readonly maxDepth?: number;
  /** Stop at the first error even when `onSkip` is given (`--strict`). */
  readonly strict?: boolean;
  /** Told about each part of the tree that could not be read; the walk goes on. */
  readonly onSkip?: (path: string, error: VirtkitError) => void;
}

export const DEFAULT_MAX_WALK_DEPTH = 512;

/** The path that reaches child `entry` of the directory reached by `dirLocator`. */
export function childLocator(dirLocator: string, entry: DirEntry): string {
  if (entry.name.includes('/') && entry.inode !== undefined) return `#${entry.inode}`;
  return dirLocator.endsWith('/') ? `${dirLocator}${entry.name}` : `${dirLocator}/${entry.name}`;
}

export async function* walkTree(fs: Filesystem, start: string, options: WalkOptions = {}): AsyncGenerator<WalkItem> {
  const maxDepth = options.maxDepth ?? DEFAULT_MAX_WALK_DEPTH;
  const tolerant = options.onSkip !== undefined && options.strict !== true;
  const visited = new Set<number>();
  const rootStat = await fs.stat(start);
  visited.add(rootStat.ino);
  const base = splitPath(start);
  const skip = (path: string, err: unknown): void => {
    if (!tolerant || !isVirtkitError(err)) throw err;
    options.onSkip!(path, err);
  };
  async function* visit(names: string[], locator: string, depth: number): AsyncGenerator<WalkItem> {
    const dirPath = joinPath(names);
    if (depth > maxDepth) {
      skip(dirPath, new VirtkitError('fs.corrupt', `directory tree deeper than ${maxDepth} levels at ${dirPath}`,
        { structure: 'directory tree', offset: 0, path: dirPath }));
      return;
    }
    let entries: DirEntry[];
    try {
      const scan = await fs.scandir(locator);
      for (const err of scan.damaged) skip(dirPath, err);
      entries = scan.entries;
    } catch (err) {
      skip(dirPath, err);
      return;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const childNames = [...names, entry.name];
      const child = childLocator(locator, entry);
      yield { path: joinPath(childNames), names: childNames, locator: child, entry, depth };
      if (entry.type === 'directory') {
        if (entry.inode !== undefined) {
          if (visited.has(entry.inode)) continue;
          visited.add(entry.inode);
        }
        yield* visit(childNames, child, depth + 1);
      }
    }
  }
  yield* visit(base, start === '' ? '/' : start, 1);
}
