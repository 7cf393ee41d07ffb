/**
 * Who is on the other end of a unix socket connection, as the kernel recorded it when the
 * client connected (SO_PEERCRED): uid, gid and pid. Node has no binding for it, so a few lines
 * of C do it (native/peer_cred.c, built by `npm ci` through node-gyp into build/Release).
 * The answer is immediate and costs one system call: no process is started per connection.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VirtkitError, errorMessage } from '../util/errors.js';

export interface PeerCredentials {
  uid: number;
  gid: number;
  pid: number;
}

interface PeerCredAddon {
  peerCredentials(fd: number): PeerCredentials;
}

const AddonFile = join('build', 'Release', 'peer_cred.node');

let addon: PeerCredAddon | undefined;

/**
 * The package root holds build/Release: two levels up from src/daemon when run from source,
 * three from dist/src/daemon when built.
 */
function findAddon(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, AddonFile);
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  return undefined;
}

/**
 * Loads the addon, once. Called when the daemon starts serving (not at import: the CLI imports
 * this module without ever needing it), so a missing build fails the daemon's start-up with a
 * message that says what to run instead of failing every request.
 */
export function loadPeerCredentials(): PeerCredAddon {
  if (addon) return addon;
  const file = findAddon();
  if (!file) {
    throw new VirtkitError('internal', `the peer credentials addon (${AddonFile}) is not built: run "npm rebuild" (or "node native/build.mjs") in the virtkit package`);
  }
  try {
    addon = createRequire(import.meta.url)(file) as PeerCredAddon;
  } catch (err) {
    throw new VirtkitError('internal', `cannot load ${file}: ${errorMessage(err)}; rebuild it with "node native/build.mjs"`, {}, { cause: err });
  }
  return addon;
}

/** The file descriptor behind a net.Socket (libuv's Pipe handle exposes it on Unix). */
function socketFd(socket: Socket): number | undefined {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/**
 * The credentials of the peer of an accepted unix socket; `undefined` for a socket that has no
 * descriptor (already closed) or is not a unix socket (SO_PEERCRED answers nothing useful then).
 */
export function peerCredentials(socket: Socket): PeerCredentials | undefined {
  const fd = socketFd(socket);
  if (fd === undefined) return undefined;
  try {
    const cred = loadPeerCredentials().peerCredentials(fd);
    // Sockets that are not unix sockets answer pid 0 (and uid/gid -1): no credentials.
    return cred.pid > 0 ? cred : undefined;
  } catch (err) {
    if (err instanceof VirtkitError) throw err;
    return undefined;
  }
}
