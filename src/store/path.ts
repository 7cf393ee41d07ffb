/**
 * Store paths: `/`, `/domain`, `/domain/web1/state`.
 *
 * Grammar (checked on every operation, violations throw `store.invalid-path`):
 *   path     = "/" | ("/" segment)+
 *   segment  = 1..255 of  A-Z a-z 0-9 _ - . @ : + = , ~ %   but not "." or ".."
 *   length   <= 1024 characters in total
 * No trailing slash, no empty segment, nothing outside printable ASCII, so paths sort
 * bytewise the same in JavaScript, SQLite and etcd. Names that need other characters go
 * through `encodeSegment` (percent-encoding) first.
 */
import { VirtkitError } from '../util/errors.js';

export const MaxPathLength = 1024;
export const MaxSegmentLength = 255;

const SegmentPattern = /^[A-Za-z0-9_\-.@:+=,~%]+$/;
const PathPattern = /^(?:\/[A-Za-z0-9_\-.@:+=,~%]+)+$/;

/** Why a path is invalid, or undefined when it is valid. Runs in time linear in the input. */
/**
 * Paths already found valid. Every store read checks its path, and a daemon reads the same few
 * thousand paths over and over (`list` reads each domain's): a Set lookup instead of the
 * pattern test. Bounded: past the limit it starts afresh.
 */
const knownValid = new Set<string>();
const MaxKnownValid = 50_000;

export function pathProblem(path: unknown): string | undefined {
  if (typeof path !== 'string') return 'a path must be a string';
  if (knownValid.has(path)) return undefined;
  const problem = checkPath(path);
  if (problem === undefined) {
    if (knownValid.size >= MaxKnownValid) knownValid.clear();
    knownValid.add(path);
  }
  return problem;
}

function checkPath(path: string): string | undefined {
  if (path === '/') return undefined;
  if (path.length === 0) return 'a path must not be empty';
  if (path.length > MaxPathLength) return `a path must be at most ${MaxPathLength} characters, got ${path.length}`;
  if (path[0] !== '/') return 'a path must start with "/"';
  if (path.endsWith('/')) return 'a path must not end with "/"';
  if (!PathPattern.test(path)) {
    if (path.includes('//')) return 'a path must not contain an empty segment ("//")';
    return 'a path segment may hold only letters, digits and _ - . @ : + = , ~ %';
  }
  // Every store operation checks its path: skip splitting (and the garbage it makes) when no
  // segment can be "." or ".." (none starts with a dot) or too long (the path is short).
  if (path.length <= MaxSegmentLength + 1 && !path.includes('/.')) return undefined;
  for (const segment of path.slice(1).split('/')) {
    if (segment === '.' || segment === '..') return `"${segment}" is not a valid path segment`;
    if (segment.length > MaxSegmentLength) return `a path segment must be at most ${MaxSegmentLength} characters`;
  }
  return undefined;
}

export function isValidPath(path: unknown): path is string {
  return pathProblem(path) === undefined;
}

/** Throws `store.invalid-path` (data: `{ path, reason }`) unless `path` follows the grammar. */
export function assertValidPath(path: unknown): asserts path is string {
  const reason = pathProblem(path);
  if (reason !== undefined) {
    throw new VirtkitError('store.invalid-path', `invalid store path ${describe(path)}: ${reason}`, {
      path: typeof path === 'string' ? path.slice(0, MaxPathLength + 1) : undefined,
      reason,
    });
  }
}

/** The segments of a valid path: `/a/b` -> `['a', 'b']`, `/` -> `[]`. Throws `store.invalid-path`. */
export function parsePath(path: string): string[] {
  assertValidPath(path);
  return path === '/' ? [] : path.slice(1).split('/');
}

/**
 * `joinPath('/domain', name, 'state')`: appends segments to a valid path. Each segment must
 * be a single valid segment (so a name holding "/" cannot escape into another subtree);
 * throws `store.invalid-path` otherwise.
 */
export function joinPath(base: string, ...segments: string[]): string {
  assertValidPath(base);
  let out = base === '/' ? '' : base;
  for (const segment of segments) {
    if (typeof segment !== 'string' || !SegmentPattern.test(segment) || segment === '.' || segment === '..'
      || segment.length > MaxSegmentLength) {
      throw new VirtkitError('store.invalid-path', `invalid store path segment ${describe(segment)}`, {
        path: base, segment: typeof segment === 'string' ? segment.slice(0, MaxSegmentLength + 1) : undefined,
        reason: 'not a valid path segment',
      });
    }
    out += `/${segment}`;
  }
  const joined = out === '' ? '/' : out;
  assertValidPath(joined);
  return joined;
}

/** The parent of a valid path (`/a/b` -> `/a`, `/a` -> `/`); undefined for the root. */
export function parentPath(path: string): string | undefined {
  if (path === '/') return undefined;
  const i = path.lastIndexOf('/');
  return i === 0 ? '/' : path.slice(0, i);
}

/** The last segment of a valid path (`/a/b` -> `b`); '' for the root. */
export function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** True when `path` is `ancestor` itself or lies below it (`/a/b` is at or below `/a`, `/ab` is not). */
export function isAtOrBelow(path: string, ancestor: string): boolean {
  if (ancestor === '/') return true;
  return path === ancestor || (path.startsWith(ancestor) && path.charCodeAt(ancestor.length) === 0x2f);
}

/** Every proper ancestor of a valid path, nearest last: `/a/b/c` -> `['/', '/a', '/a/b']`. */
export function ancestorsOf(path: string): string[] {
  const out: string[] = [];
  for (let p = parentPath(path); p !== undefined; p = parentPath(p)) out.push(p);
  return out.reverse();
}

/**
 * Percent-encodes any string into one valid segment (and `decodeSegment` reverses it), for
 * names that may hold characters outside the grammar. Already-valid names other than
 * those containing "%" are returned unchanged. The empty string, "." and ".." are encoded
 * so they stay valid segments. Long names may still exceed the segment limit.
 */
export function encodeSegment(name: string): string {
  if (name === '') return '%';
  const encoded = Array.from(new TextEncoder().encode(name), (byte) => {
    const ch = String.fromCharCode(byte);
    return byte < 0x80 && ch !== '%' && SegmentPattern.test(ch) ? ch : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }).join('');
  if (encoded === '.') return '%2E';
  if (encoded === '..') return '%2E%2E';
  return encoded;
}

export function decodeSegment(segment: string): string {
  if (segment === '%') return '';
  const bytes: number[] = [];
  for (let i = 0; i < segment.length; i++) {
    const ch = segment.charCodeAt(i);
    if (ch === 0x25 && /^[0-9A-Fa-f]{2}$/.test(segment.slice(i + 1, i + 3))) {
      bytes.push(parseInt(segment.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(ch);
    }
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}

function describe(value: unknown): string {
  if (typeof value !== 'string') return `(${typeof value})`;
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}...` : value);
}

/**
 * Whether a change (`op` at `changePath`) concerns a watcher of `watched`: the change is
 * at or below it, or it removes an ancestor (and with it the watched node).
 */
export function affects(op: string, changePath: string, watched: string): boolean {
  return isAtOrBelow(changePath, watched) || (op === 'rm' && isAtOrBelow(watched, changePath));
}
