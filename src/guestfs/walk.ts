/**
 * Depth-first walk of a directory tree. Symlinks are reported, never descended into; a
 * directory reached twice (a hard-linked directory in a corrupt image) is not re-entered,
 * and depth is limited, so the walk ends on any image.
 *
 * Like `ls -R` and `find`, a walk given `onSkip` goes on past a damaged subtree: a directory
 * that cannot be read, or the damaged part of one, is handed to `onSkip` with its path and
 * typed error, and everything else is still listed. Without `onSkip` (or with `strict`) the
 * first error ends the walk.
 *
 * Speed (docs/guestfs.md, "Tree walks"): the walk keeps its own stack instead of nesting a
 * generator per level, hands out a directory's items as one batch, and scans the
 * subdirectories of a directory several at a time through `scandirs` (by node number, no
 * path resolved per directory), so a reader can fetch their blocks in a few large requests.
 * What is scanned ahead is bounded (PREFETCH_ENTRIES, WALK_BATCH_BYTES).
 */
import { VirtkitError, isVirtkitError } from '../util/errors.js';
import { joinPath, splitPath } from './fs/path.js';
import type { DirEntry, DirRef, DirScan, Filesystem } from './fs/types.js';

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
/** Directory blocks scanned together in one `scandirs` call. */
export const WALK_BATCH_BYTES = 512 << 10;
/** ... while fewer entries than this are held scanned ahead and not yet entered, over all levels; */
export const PREFETCH_ENTRIES = 1 << 16;
/** ... then batches of this many bytes (so deeper levels still batch), up to 2x PREFETCH_ENTRIES held; beyond, one directory at a time. */
const SMALL_BATCH_BYTES = 64 << 10;
/** Subdirectories offered to one `scandirs` call. */
const PREFETCH_DIRS = 1024;

/** The path that reaches child `entry` of the directory reached by `dirLocator`. */
export function childLocator(dirLocator: string, entry: DirEntry): string {
  if (entry.name.includes('/') && entry.inode !== undefined) return `#${entry.inode}`;
  return dirLocator.endsWith('/') ? `${dirLocator}${entry.name}` : `${dirLocator}/${entry.name}`;
}

function byName(a: DirEntry, b: DirEntry): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/** One directory being listed: its sorted entries, how far the walk got, and its subdirectories scanned ahead. */
interface Frame {
  readonly names: readonly string[];
  readonly path: string;
  readonly locator: string;
  readonly depth: number;
  readonly entries: DirEntry[];
  pos: number;
  /** Scans of subdirectories done ahead, by entry index. */
  readonly ahead: Map<number, DirScan | Error>;
}

export async function* walkTree(fs: Filesystem, start: string, options: WalkOptions = {}): AsyncGenerator<WalkItem> {
  for await (const batch of walkTreeBatches(fs, start, options)) yield* batch;
}

/**
 * The walk as batches of consecutive items (the items of one directory up to the next
 * subdirectory entered): the same items in the same order as `walkTree`, for callers that
 * handle thousands of entries and need not pay a promise per entry.
 */
export async function* walkTreeBatches(fs: Filesystem, start: string, options: WalkOptions = {}): AsyncGenerator<WalkItem[]> {
  const maxDepth = options.maxDepth ?? DEFAULT_MAX_WALK_DEPTH;
  const tolerant = options.onSkip !== undefined && options.strict !== true;
  const visited = new Set<number>();
  const rootStat = await fs.stat(start);
  visited.add(rootStat.ino);
  const skip = (path: string, err: unknown): void => {
    if (!tolerant || !isVirtkitError(err)) throw err;
    options.onSkip!(path, err);
  };
  let held = 0;

  /** A frame for the directory whose scan (or failure) is `scan`; undefined when it could not be read. */
  const enter = (names: readonly string[], locator: string, depth: number, scan: DirScan | Error): Frame | undefined => {
    const path = joinPath(names);
    if (scan instanceof Error) {
      skip(path, scan);
      return undefined;
    }
    for (const err of scan.damaged) skip(path, err);
    const entries = [...scan.entries].sort(byName);
    return { names, path, locator, depth, entries, pos: 0, ahead: new Map() };
  };

  /** The scan of subdirectory `index` of `frame`, from what was scanned ahead or with the next ones. */
  const scanChild = async (frame: Frame, index: number, locator: string): Promise<DirScan | Error> => {
    const ready = frame.ahead.get(index);
    if (ready !== undefined) {
      frame.ahead.delete(index);
      if (!(ready instanceof Error)) held -= ready.entries.length;
      return ready;
    }
    if (fs.scandirs === undefined) return fs.scandir(locator).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));
    const indexes: number[] = [];
    const refs: DirRef[] = [];
    for (let i = index; i < frame.entries.length && refs.length < PREFETCH_DIRS; i++) {
      const e = frame.entries[i]!;
      // Later siblings already entered elsewhere are not scanned ahead (the one asked for was just marked visited).
      if (i !== index && (e.type !== 'directory' || (e.inode !== undefined && visited.has(e.inode)))) continue;
      indexes.push(i);
      refs.push({ path: i === index ? locator : childLocator(frame.locator, e), ...(e.inode === undefined ? {} : { node: e.inode }) });
    }
    const budget = held < PREFETCH_ENTRIES ? WALK_BATCH_BYTES : held < 2 * PREFETCH_ENTRIES ? SMALL_BATCH_BYTES : 0;
    const scans = await fs.scandirs(refs, budget);
    for (let k = 1; k < scans.length; k++) {
      const scan = scans[k]!;
      frame.ahead.set(indexes[k]!, scan);
      if (!(scan instanceof Error)) held += scan.entries.length;
    }
    return scans[0]!;
  };

  const base = splitPath(start);
  const startLocator = start === '' ? '/' : start;
  const stack: Frame[] = [];
  if (1 > maxDepth) {
    skip(joinPath(base), new VirtkitError('fs.corrupt', `directory tree deeper than ${maxDepth} levels at ${joinPath(base)}`,
      { structure: 'directory tree', offset: 0, path: joinPath(base) }));
    return;
  }
  const first = enter(base, startLocator, 1, await fs.scandir(startLocator).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err)))));
  if (first !== undefined) stack.push(first);
  while (stack.length > 0) {
    const frame = stack[stack.length - 1]!;
    const batch: WalkItem[] = [];
    let child: Frame | undefined;
    while (frame.pos < frame.entries.length && child === undefined) {
      const index = frame.pos++;
      const entry = frame.entries[index]!;
      const names = [...frame.names, entry.name];
      const locator = childLocator(frame.locator, entry);
      batch.push({ path: frame.names.length === 0 ? `/${entry.name}` : `${frame.path}/${entry.name}`, names, locator, entry, depth: frame.depth });
      if (entry.type !== 'directory') continue;
      if (entry.inode !== undefined) {
        if (visited.has(entry.inode)) continue;
        visited.add(entry.inode);
      }
      const depth = frame.depth + 1;
      if (depth > maxDepth) {
        const path = joinPath(names);
        if (batch.length > 0) yield batch.splice(0);
        skip(path, new VirtkitError('fs.corrupt', `directory tree deeper than ${maxDepth} levels at ${path}`,
          { structure: 'directory tree', offset: 0, path }));
        continue;
      }
      const scan = await scanChild(frame, index, locator);
      // Items go out before the damage of the directory they lead into is reported, as before.
      if (batch.length > 0) yield batch.splice(0);
      child = enter(names, locator, depth, scan);
    }
    if (batch.length > 0) yield batch;
    if (child !== undefined) stack.push(child);
    else if (frame.pos >= frame.entries.length) {
      stack.pop();
      for (const scan of frame.ahead.values()) if (!(scan instanceof Error)) held -= scan.entries.length;
    }
  }
}
