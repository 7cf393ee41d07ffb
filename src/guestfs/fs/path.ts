/**
 * Path resolution shared by every filesystem reader. Walks a path component by component
 * over a driver's `lookup`, keeping the chain of directories so `..` works without parent
 * pointers, and follows symlinks with Linux's limits (40 links, 4096-byte paths).
 */
import { Readable } from 'node:stream';
import { VirtkitError } from '../../util/errors.js';
import {
  DEFAULT_MAX_READ_BYTES, MAX_PATH_BYTES, MAX_SYMLINKS,
  type DirEntry, type DirRef, type DirScan, type FileStat, type Filesystem, type FilesystemDriver, type FilesystemInfo, type FsNode,
  type ReadFileOptions,
} from './types.js';

/** Chunk size of createReadStream. */
const STREAM_CHUNK = 1 << 20;

interface Step<N> {
  readonly name: string;
  readonly node: N;
}

/** Splits a guest path into its non-empty components. */
export function splitPath(path: string): string[] {
  if (Buffer.byteLength(path) > MAX_PATH_BYTES) {
    throw new VirtkitError('argument.invalid', `path is longer than ${MAX_PATH_BYTES} bytes`, { path: path.slice(0, 64) });
  }
  return path.split('/').filter((c) => c !== '' && c !== '.');
}

/**
 * N when `path` starts with the component `#N` (no leading slash): a path from inode N. Any
 * other first component starting with `#` (`#0`, `#abc`) is `argument.invalid`: it can only
 * have meant an inode number (a file named `#abc` is `/#abc`). `count` is the filesystem's
 * number of nodes, for the message and the range check.
 */
export function inodeReference(path: string, count?: number): number | undefined {
  if (!path.startsWith('#')) return undefined;
  const first = path.split('/', 1)[0]!;
  const n = /^#[0-9]{1,15}$/.test(first) ? Number(first.slice(1)) : NaN;
  if (Number.isSafeInteger(n) && n > 0 && (count === undefined || n <= count)) return n;
  const range = count === undefined ? '1 or more' : `1..${count}`;
  throw new VirtkitError('argument.invalid', `${first.slice(0, 32)}: #N takes an inode number ${range}`, { path: path.slice(0, 64), ...(count === undefined ? {} : { count }) });
}

export function joinPath(names: readonly string[]): string {
  return `/${names.join('/')}`;
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

export class PathFilesystem<N extends FsNode> implements Filesystem {
  constructor(private readonly driver: FilesystemDriver<N>) {}

  get info(): FilesystemInfo {
    return this.driver.info;
  }

  /**
   * Resolves `path` to its chain of steps (root first). With `followLast` a final symlink
   * is followed too. Throws `fs.not-found`, `fs.not-a-directory`, `fs.symlink-loop`.
   */
  async resolve(path: string, followLast: boolean): Promise<Step<N>[]> {
    const root: Step<N> = { name: '', node: await this.driver.root() };
    let chain: Step<N>[] = [root];
    const pending = splitPath(path).reverse();
    const start = inodeReference(path, this.driver.nodeCount);
    if (start !== undefined) {
      // `#N`: the walk starts at node N (a name with `/` in it is reachable no other way).
      if (this.driver.nodeByNumber === undefined) {
        throw new VirtkitError('argument.invalid', `${path}: this filesystem has no node numbers to start a path from`, { path });
      }
      pending.pop();
      chain = [root, { name: `#${start}`, node: await this.driver.nodeByNumber(start) }];
    }
    let links = 0;
    while (pending.length > 0) {
      const name = pending.pop()!;
      if (name === '..') {
        if (chain.length > 1) chain.pop();
        continue;
      }
      const dir = chain[chain.length - 1]!;
      if (dir.node.type !== 'directory') {
        throw new VirtkitError('fs.not-a-directory', `${joinPath(chain.slice(1).map((s) => s.name))} is not a directory`, { path });
      }
      const node = await this.driver.lookup(dir.node, name);
      if (node === undefined) {
        throw new VirtkitError('fs.not-found', `${joinPath([...chain.slice(1).map((s) => s.name), name])}: no such file or directory`, { path });
      }
      if (node.type === 'symlink' && (pending.length > 0 || followLast)) {
        if (++links > MAX_SYMLINKS) {
          throw new VirtkitError('fs.symlink-loop', `too many levels of symbolic links resolving ${path}`, { path, limit: MAX_SYMLINKS });
        }
        const target = await this.driver.readlink(node);
        if (target.startsWith('/')) chain = [root];
        pending.push(...splitPath(target).reverse());
        if (pending.length > MAX_PATH_BYTES) {
          throw new VirtkitError('fs.symlink-loop', `symbolic links expand ${path} beyond ${MAX_PATH_BYTES} components`, { path });
        }
        continue;
      }
      chain.push({ name, node });
    }
    return chain;
  }

  private async node(path: string, follow: boolean): Promise<N> {
    const chain = await this.resolve(path, follow);
    return chain[chain.length - 1]!.node;
  }

  private async fileNode(path: string): Promise<N> {
    const node = await this.node(path, true);
    if (node.type === 'directory') throw new VirtkitError('fs.is-a-directory', `${path} is a directory`, { path });
    return node;
  }

  async readdir(path: string): Promise<DirEntry[]> {
    const { entries, damaged } = await this.scandir(path);
    if (damaged.length > 0) throw damaged[0]!;
    return entries;
  }

  async scandir(path: string): Promise<DirScan> {
    const node = await this.node(path, true);
    if (node.type !== 'directory') throw new VirtkitError('fs.not-a-directory', `${path} is not a directory`, { path });
    if (this.driver.scan !== undefined) return this.driver.scan(node);
    return { entries: await this.driver.list(node), damaged: [] };
  }

  async scandirs(dirs: readonly DirRef[], maxBytes: number): Promise<(DirScan | Error)[]> {
    const numbers = dirs.map((d) => d.node);
    const { driver } = this;
    if (driver.scanNumbered === undefined || dirs.length === 0 || numbers.some((n) => n === undefined)) {
      return [await this.scandir(dirs[0]!.path).catch((err: unknown) => asError(err))];
    }
    const scans = await driver.scanNumbered(numbers as number[], maxBytes);
    return scans.map((scan, i) => (scan instanceof VirtkitError && scan.code === 'fs.not-a-directory'
      ? new VirtkitError('fs.not-a-directory', `${dirs[i]!.path} is not a directory`, { path: dirs[i]!.path })
      : scan));
  }

  async stat(path: string): Promise<FileStat> {
    return this.driver.stat(await this.node(path, true));
  }

  async lstat(path: string): Promise<FileStat> {
    return this.driver.stat(await this.node(path, false));
  }

  async readlink(path: string): Promise<string> {
    const node = await this.node(path, false);
    if (node.type !== 'symlink') throw new VirtkitError('argument.invalid', `${path} is not a symbolic link`, { path });
    return this.driver.readlink(node);
  }

  async realpath(path: string): Promise<string> {
    const chain = await this.resolve(path, true);
    return joinPath(chain.slice(1).map((s) => s.name));
  }

  async readFile(path: string, options: ReadFileOptions = {}): Promise<Uint8Array> {
    const node = await this.fileNode(path);
    const max = options.maxBytes ?? DEFAULT_MAX_READ_BYTES;
    if (node.size > max) {
      throw new VirtkitError('fs.too-large', `${path} is ${node.size} bytes, more than the limit of ${max}`, { path, size: node.size, maxBytes: max });
    }
    return this.driver.read(node, 0, node.size);
  }

  async readRange(path: string, offset: number, length: number): Promise<Uint8Array> {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || length > DEFAULT_MAX_READ_BYTES) {
      throw new VirtkitError('argument.invalid', `invalid range ${offset}+${length}`, { path, offset, length });
    }
    return this.driver.read(await this.fileNode(path), offset, length);
  }

  createReadStream(path: string): Readable {
    const chunks = async function* (this: PathFilesystem<N>): AsyncGenerator<Uint8Array> {
      const node = await this.fileNode(path);
      let offset = 0;
      while (offset < node.size) {
        const chunk = await this.driver.read(node, offset, Math.min(STREAM_CHUNK, node.size - offset));
        if (chunk.length === 0) return;
        offset += chunk.length;
        yield chunk;
      }
    };
    return Readable.from(chunks.call(this), { objectMode: false, highWaterMark: STREAM_CHUNK });
  }

  close(): Promise<void> {
    return this.driver.close();
  }
}
