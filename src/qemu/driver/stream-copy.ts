/**
 * The byte copy between QEMU's migration socket and a save file (guest-state.ts), done by
 * `cat` with the socket and the file as its stdin and stdout: the bytes go from one kernel
 * object to the other without passing through this process's event loop. Copied in Node
 * (read a chunk, hand it to the thread pool to write, read the next), a save of a booted
 * 256 MiB guest took about twice as long as bare QEMU's `exec:cat` on the same machine
 * (docs/save-restore.md#where-the-time-goes). No shell is involved: the argv is fixed, the
 * paths are never on a command line, and `cat` dies with its parent (util/helper-process.ts).
 */
import { spawn } from 'node:child_process';
import { readFile, type FileHandle } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { VirtkitError } from '../../util/errors.js';
import { dieWithParent, findExecutable } from '../../util/helper-process.js';

/** A running copy: `done` settles when `cat` exits (rejects unless it succeeded). */
export interface StreamCopy {
  done: Promise<void>;
  /** The copying process (undefined when it could not be started). */
  pid: number | undefined;
  /** Ends the copy now (a failed migration); `done` then rejects. */
  stop(): void;
}

let catPath: string | undefined;

/**
 * Moves `fh`'s file position to `offset` (Node has no lseek: reading with a null position
 * advances it), so a `cat` given the descriptor starts right after the save file's header.
 */
export async function seekTo(fh: FileHandle, offset: number): Promise<void> {
  const buf = Buffer.alloc(Math.min(offset, 1024 * 1024));
  for (let left = offset; left > 0;) {
    const { bytesRead } = await fh.read(buf, 0, Math.min(left, buf.length), null);
    if (bytesRead === 0) throw new VirtkitError('save.truncated', `the save file ends inside its header (${offset - left} of ${offset} bytes)`, { offset });
    left -= bytesRead;
  }
}

/** Runs `cat` from `input` to `output` (open descriptors or connected sockets). */
export function copyWithCat(input: Socket | number, output: Socket | number, what: string): StreamCopy {
  catPath ??= findExecutable('cat');
  if (catPath === undefined) throw new VirtkitError('operation.unsupported', 'cat (coreutils) is not installed: save and restore copy the migration stream with it', { binary: 'cat' });
  const helper = dieWithParent(catPath, []);
  const child = spawn(helper.file, helper.args, { stdio: [input, output, 'pipe'] });
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (s: string) => { if (stderr.length < 4096) stderr += s; });
  const done = new Promise<void>((resolve, reject) => {
    child.once('error', (err) => reject(new VirtkitError('image.io', `${what}: cannot run cat: ${err.message}`, {}, { cause: err })));
    child.once('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new VirtkitError('image.io', `${what}: cat ended with ${signal ?? `status ${String(code)}`}${stderr ? `: ${stderr.trim()}` : ''}`, { code, signal }));
    });
  });
  done.catch(() => undefined);
  return { done, pid: child.pid, stop: () => { child.kill('SIGKILL'); } };
}

/**
 * The file position of descriptor `fd` of process `pid` (Linux's /proc/PID/fdinfo): how far
 * `cat` has read or written its file. Undefined once the process is gone.
 */
export async function filePosition(pid: number, fd: number): Promise<number | undefined> {
  const text = await readFile(`/proc/${pid}/fdinfo/${fd}`, 'utf8').catch(() => undefined);
  const m = text === undefined ? null : /^pos:\s*(\d+)$/m.exec(text);
  return m ? Number(m[1]) : undefined;
}
