import { lstat, unlink } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { isVirtkitError, VirtkitError } from '../../util/errors.js';
import type { BlockDevice } from '../block/index.js';
import { serveConnection } from './connection.js';
import type { NbdExport } from './export.js';
import { SnapshotOverlay } from './snapshot-overlay.js';

export type NbdListen = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

/** `read-only`: writes get EPERM. `snapshot`: writes land in a throwaway overlay, the image is untouched. */
export type NbdWriteMode = 'read-only' | 'snapshot';

export interface NbdServerOptions {
  readonly device: BlockDevice;
  readonly listen: NbdListen;
  readonly mode: NbdWriteMode;
  /** Default `""`, the name qemu's clients ask for when a URI names none. */
  readonly exportName?: string;
  readonly description?: string;
  /** Clients served at once (default 1, as qemu-nbd); later ones wait their turn, up to a queue bound. */
  readonly shared?: number;
  /** Directory for the snapshot overlay file (default: the OS temporary directory). */
  readonly overlayDir?: string;
  /** Told about each connection that broke the protocol or failed; the server keeps running. */
  readonly onConnectionError?: (err: VirtkitError) => void;
}

/** Connections beyond `shared` wait for a slot; beyond this many waiting, they are refused. */
const MAX_WAITING_CONNECTIONS = 64;

/**
 * An NBD server exporting one BlockDevice, like `qemu-nbd --persistent`: it serves clients
 * until closed. Bind addresses are the caller's choice; the CLI defaults to loopback.
 */
export class NbdServer {
  private readonly active = new Set<Socket>();
  private readonly waiting: Socket[] = [];
  private closing = false;

  private constructor(
    private readonly server: Server,
    private readonly exp: NbdExport,
    private readonly overlay: SnapshotOverlay | undefined,
    private readonly shared: number,
    readonly listen: NbdListen,
    private readonly onConnectionError: (err: VirtkitError) => void,
  ) {}

  /** Starts listening. For TCP port 0 the kernel picks a port, reported by `address`. */
  static async start(opts: NbdServerOptions): Promise<NbdServer> {
    const shared = opts.shared ?? 1;
    if (!Number.isInteger(shared) || shared < 1) {
      throw new VirtkitError('argument.invalid', `shared must be a positive integer, got ${shared}`, { shared });
    }
    const exportName = opts.exportName ?? '';
    if (Buffer.byteLength(exportName) > 4096 || exportName.includes('\0')) {
      throw new VirtkitError('argument.invalid', 'export name must be at most 4096 bytes without NUL', { exportName });
    }
    const overlay = opts.mode === 'snapshot' ? await SnapshotOverlay.create(opts.device, { dir: opts.overlayDir }) : undefined;
    const exp: NbdExport = {
      name: exportName,
      device: overlay ?? opts.device,
      multiConn: shared > 1,
      ...(overlay ? { writer: overlay } : {}),
      ...(opts.description !== undefined ? { description: opts.description } : {}),
    };
    const server = createServer({ noDelay: true, allowHalfOpen: true });
    const self = new NbdServer(server, exp, overlay, shared, opts.listen, opts.onConnectionError ?? (() => {}));
    server.on('connection', (sock) => self.admit(sock));
    try {
      try {
        await listenOn(server, opts.listen);
      } catch (err) {
        // A socket file left by a server that died: nobody answers on it, so it may be replaced.
        if (opts.listen.kind !== 'unix' || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE'
          || !(await isStaleSocket(opts.listen.path))) throw err;
        await unlink(opts.listen.path);
        await listenOn(server, opts.listen);
      }
    } catch (err) {
      await overlay?.close();
      const where = opts.listen.kind === 'unix' ? opts.listen.path : `${opts.listen.host}:${opts.listen.port}`;
      throw new VirtkitError('connection.failed', `cannot listen on ${where}: ${(err as Error).message}`,
        { listen: opts.listen }, { cause: err });
    }
    return self;
  }

  /** The address actually bound (with the kernel's port for TCP port 0). */
  get address(): NbdListen {
    if (this.listen.kind === 'unix') return this.listen;
    const a = this.server.address();
    return { kind: 'tcp', host: this.listen.host, port: typeof a === 'object' && a ? a.port : this.listen.port };
  }

  /** The URI qemu's tools accept for this export. */
  get uri(): string {
    return nbdUri(this.address, this.exp.name);
  }

  get connections(): number {
    return this.active.size;
  }

  /** Stops listening, drops every client, discards the overlay. The device stays open for its owner. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of [...this.active, ...this.waiting]) s.destroy();
    this.waiting.length = 0;
    await closed;
    await this.overlay?.close();
  }

  private admit(sock: Socket): void {
    if (this.closing) {
      sock.destroy();
      return;
    }
    if (this.active.size < this.shared) {
      this.serve(sock);
    } else if (this.waiting.length < MAX_WAITING_CONNECTIONS) {
      this.waiting.push(sock);
      sock.once('close', () => {
        const i = this.waiting.indexOf(sock);
        if (i >= 0) this.waiting.splice(i, 1);
      });
    } else {
      sock.destroy();
    }
  }

  private serve(sock: Socket): void {
    this.active.add(sock);
    sock.on('error', () => {}); // reported through serveConnection's result
    serveConnection(sock, this.exp)
      .catch((err: unknown) => {
        this.onConnectionError(isVirtkitError(err) ? err
          : new VirtkitError('internal', `connection failed: ${String(err)}`, {}, { cause: err }));
      })
      .finally(() => {
        const release = (): void => {
          this.active.delete(sock);
          const next = this.waiting.shift();
          if (next && !this.closing) this.serve(next);
        };
        if (sock.closed) release();
        else {
          sock.once('close', release);
          sock.end();
        }
      });
  }
}

function listenOn(server: Server, listen: NbdListen): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    const done = (): void => {
      server.off('error', reject);
      resolve();
    };
    if (listen.kind === 'unix') server.listen(listen.path, done);
    else server.listen(listen.port, listen.host, done);
  });
}

/** True when `path` is a unix socket nobody listens on. */
async function isStaleSocket(path: string): Promise<boolean> {
  try {
    if (!(await lstat(path)).isSocket()) return false;
  } catch {
    return false;
  }
  return new Promise<boolean>((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(false);
    });
    probe.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

/** `nbd+unix:///NAME?socket=PATH` or `nbd://HOST:PORT/NAME`, as qemu-img and qemu-io accept them. */
export function nbdUri(listen: NbdListen, exportName: string): string {
  const name = encodeURIComponent(exportName);
  if (listen.kind === 'unix') return `nbd+unix:///${name}?socket=${encodeURIComponent(listen.path).replace(/%2F/g, '/')}`;
  const host = listen.host.includes(':') ? `[${listen.host}]` : listen.host;
  return `nbd://${host}:${listen.port}/${name}`;
}
