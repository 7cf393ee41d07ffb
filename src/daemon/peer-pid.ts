/**
 * Who is on the other end of a unix socket connection. Node has no SO_PEERCRED, so the daemon
 * asks the kernel through iproute2's `ss -xpn` (sock_diag): our accepted socket's inode comes
 * from /proc/self/fd, and the client's socket is the one whose peer is that inode. Resolved
 * once per connection, in the background; `null` when it cannot be told (no ss, a process that
 * already went away, or another user's process that /proc does not show us).
 */
import { execFile } from 'node:child_process';
import { readlink } from 'node:fs/promises';
import type { Socket } from 'node:net';

/** The file descriptor behind a net.Socket (libuv's Pipe handle exposes it on Unix). */
function socketFd(socket: Socket): number | undefined {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

async function socketInode(fd: number): Promise<string | undefined> {
  try {
    const link = await readlink(`/proc/self/fd/${fd}`);
    return /^socket:\[(\d+)\]$/.exec(link)?.[1];
  } catch {
    return undefined;
  }
}

function runSs(): Promise<string> {
  return new Promise((resolve) => {
    execFile('ss', ['-xpnH'], { maxBuffer: 16 << 20, timeout: 5000 }, (err, stdout) => resolve(err ? '' : stdout));
  });
}

/**
 * The pid owning the socket whose peer is `inode`, parsed from `ss -xpnH` lines like
 * `u_str ESTAB 0 0 * 4242 * 4243 users:(("node",pid=77,fd=20))`.
 */
export function pidFromSsOutput(output: string, inode: string): number | null {
  for (const line of output.split('\n')) {
    const cols = line.trim().split(/\s+/);
    // Netid State Recv-Q Send-Q Local Port Peer Port [Process]
    if (cols.length < 8 || cols[7] !== inode) continue;
    const m = /pid=(\d+)/.exec(line);
    if (m) return Number(m[1]);
  }
  return null;
}

/**
 * Connections waiting for the next `ss` run, by their socket inode. Clients that connect
 * together (a burst of CLI calls, a pool of connections) share one run: `ss` costs tens of
 * milliseconds of CPU, and one run per connection made a burst of 50 connections cost the
 * daemon seconds.
 */
let waiting = new Map<string, Array<(pid: number | null) => void>>();
let running = false;

function runBatch(): void {
  if (running || waiting.size === 0) return;
  running = true;
  const batch = waiting;
  waiting = new Map();
  void runSs().then((output) => {
    for (const [inode, resolvers] of batch) {
      const pid = pidFromSsOutput(output, inode);
      for (const resolve of resolvers) resolve(pid);
    }
  }).finally(() => {
    running = false;
    runBatch();
  });
}

export async function peerPid(socket: Socket): Promise<number | null> {
  const fd = socketFd(socket);
  if (fd === undefined) return null;
  const inode = await socketInode(fd);
  if (inode === undefined) return null;
  return new Promise((resolve) => {
    const resolvers = waiting.get(inode);
    if (resolvers) resolvers.push(resolve);
    else waiting.set(inode, [resolve]);
    runBatch();
  });
}
