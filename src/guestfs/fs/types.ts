/**
 * The read-only filesystem interface every reader (ext2/3/4, ISO 9660, FAT) presents.
 *
 * A reader implements only the small `FilesystemDriver` primitives (root, list, lookup,
 * read by node); `PathFilesystem` in path.ts turns those into the path-based
 * `Filesystem` below, with one shared path resolution and symlink policy for all readers.
 */
import type { Readable } from 'node:stream';
import type { VirtkitError } from '../../util/errors.js';

export const FileTypes = ['file', 'directory', 'symlink', 'chardev', 'blockdev', 'fifo', 'socket', 'unknown'] as const;
export type FileType = (typeof FileTypes)[number];

export interface DirEntry {
  readonly name: string;
  readonly type: FileType;
  /** The reader's node number (inode) when it has one. */
  readonly inode?: number;
}

/**
 * How a reader treats damage (docs/guestfs.md, "Damaged images"). By default a checksum
 * mismatch over otherwise consistent metadata is a warning and a damaged part of a directory
 * is reported while the rest is listed; `strict` makes both errors at the first one, as the
 * reader always did before.
 */
export interface ReadPolicy {
  readonly strict?: boolean;
  /** Told once per distinct condition read through (checksum mismatches). */
  readonly warn?: (message: string) => void;
}

/** A directory as far as it could be read: its entries, and the typed errors of its damaged parts. */
export interface DirScan {
  readonly entries: DirEntry[];
  readonly damaged: readonly VirtkitError[];
}

/** A directory named for `scandirs`: its path (or `#N` locator), and its node number when known. */
export interface DirRef {
  readonly path: string;
  readonly node?: number;
}

export interface FileStat {
  readonly type: FileType;
  /** Permission and special bits (`0o7777`), without the type bits. */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  readonly atime: Date;
  readonly mtime: Date;
  readonly ctime: Date;
  readonly nlink: number;
  readonly ino: number;
}

export interface FilesystemInfo {
  /** `ext2`, `ext3`, `ext4`, `iso9660`, `vfat`, ... */
  readonly type: string;
  readonly label: string;
  readonly uuid: string;
  /** Bytes the filesystem spans. */
  readonly size: number;
  /** Conditions worth telling a user that did not stop the read (a journal needing recovery). */
  readonly warnings: readonly string[];
}

export interface ReadFileOptions {
  /** Refuse (with `fs.too-large`) files larger than this many bytes. Default 256 MiB. */
  readonly maxBytes?: number;
}

/**
 * Paths are absolute, `/`-separated, inside the guest filesystem; a path whose first component
 * is `#N` (no leading slash) starts at node (inode) N, which reaches names containing `/`
 * (debugfs's `<N>`). Errors are typed:
 * `fs.not-found`, `fs.not-a-directory`, `fs.is-a-directory`, `fs.symlink-loop` (more than
 * 40 links followed), `fs.too-large`, `argument.invalid` (readlink of a non-link), and
 * `fs.corrupt` with `{ structure, offset }` for damaged metadata.
 */
export interface Filesystem {
  readonly info: FilesystemInfo;
  /** Entries of a directory (symlinks followed), without `.` and `..`. A damaged directory throws its first error. */
  readdir(path: string): Promise<DirEntry[]>;
  /** Like readdir, but a partly damaged directory gives what could be read and the errors of the rest. */
  scandir(path: string): Promise<DirScan>;
  /**
   * For tree walks: the scans of several directories at once, each named by a path and, when
   * known, its node number (which spares resolving the path). Results are given for the first
   * directories (at least one) whose blocks fit in `maxBytes`: each is the directory's scan or
   * the error `scandir` of its path would have thrown. A reader that can reads the blocks of
   * all of them together.
   */
  scandirs?(dirs: readonly DirRef[], maxBytes: number): Promise<(DirScan | Error)[]>;
  /** Follows symlinks. */
  stat(path: string): Promise<FileStat>;
  /** Does not follow a final symlink. */
  lstat(path: string): Promise<FileStat>;
  readFile(path: string, options?: ReadFileOptions): Promise<Uint8Array>;
  /** Up to `length` bytes from `offset` (fewer at end of file), like pread. Follows symlinks. */
  readRange(path: string, offset: number, length: number): Promise<Uint8Array>;
  createReadStream(path: string): Readable;
  readlink(path: string): Promise<string>;
  /** The canonical absolute path, every symlink resolved. */
  realpath(path: string): Promise<string>;
  close(): Promise<void>;
}

/** A node of a reader: whatever it needs to find the file again, plus its type and size. */
export interface FsNode {
  readonly type: FileType;
  readonly size: number;
}

/** The primitives a reader implements; path.ts builds the whole `Filesystem` from them. */
export interface FilesystemDriver<N extends FsNode = FsNode> {
  readonly info: FilesystemInfo;
  root(): Promise<N>;
  /** Entries of directory `dir` (never `.`/`..`). */
  list(dir: N): Promise<DirEntry[]>;
  /** Entries of `dir` as far as they could be read, and the errors of its damaged parts. */
  scan?(dir: N): Promise<DirScan>;
  /**
   * Tree walks: the scans of directories by node number, as many of the first as fit in
   * `maxBytes` (at least one), their blocks read together. `fs.not-a-directory` for a node
   * that is not a directory; other errors as `scan` would throw them.
   */
  scanNumbered?(numbers: readonly number[], maxBytes: number): Promise<(DirScan | VirtkitError)[]>;
  /** Node number `n` (an inode), for `#N` paths; readers without node numbers leave it out. */
  nodeByNumber?(n: number): Promise<N>;
  /** How many node numbers there are (1..count), for `#N` paths. */
  readonly nodeCount?: number;
  /** The child named `name` of directory `dir`, or undefined. `name` is never `.`, `..` or empty. */
  lookup(dir: N, name: string): Promise<N | undefined>;
  stat(node: N): Promise<FileStat>;
  /** The target of symlink `node`, at most `MAX_SYMLINK_TARGET` bytes. */
  readlink(node: N): Promise<string>;
  /** Up to `length` bytes of file `node` from `offset` (fewer only at end of file); holes read as zeros. */
  read(node: N, offset: number, length: number): Promise<Uint8Array>;
  close(): Promise<void>;
}

/** Linux's PATH_MAX: no symlink target or path longer than this is followed. */
export const MAX_PATH_BYTES = 4096;
/** Linux's MAXSYMLINKS. */
export const MAX_SYMLINKS = 40;
export const DEFAULT_MAX_READ_BYTES = 256 * 1024 * 1024;
