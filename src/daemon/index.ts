/**
 * `virtkit daemon`: the manager process. Opens the store (one daemon per state dir), re-attaches
 * to the guests it finds alive, serves the API on DIR/virtkit.sock and runs autostart once per
 * host boot. SIGTERM/SIGINT stop the daemon and nothing else: guests keep running.
 */
import type { FastifyInstance } from 'fastify';
import { join } from 'node:path';
import type { ManagerDirs } from '../api/index.js';
import type { DomainDriver } from '../qemu/index.js';
import type { Store } from '../store/index.js';
import { errorMessage } from '../util/errors.js';
import { DefaultConnectionLimits, type ConnectionLimits } from './connection-limits.js';
import type { HttpListener } from './http-listener.js';
import type { Manager } from './manager.js';
import { smallYoungGenerationWhile } from './young-generation.js';

export interface DaemonOptions {
  stateDir?: string;
  runDir?: string;
  /**
   * Group allowed to use the socket (state dir 0750 and socket 0660, both group-owned); its
   * members hold the read and write access classes. Default: owner only (0700, 0600).
   */
  socketGroup?: string;
  /** Group whose members also hold the admin class (root-equivalent: docs/security.md). Needs `socketGroup`. */
  adminGroup?: string;
  /** Log file; '-' for stderr. Default: STATE_DIR/daemon.log. */
  logFile?: string;
  logLevel?: string;
  qemuBinary?: string;
  /** Timeouts and connection counts (docs/api.md, "Limits"); unset ones keep their defaults. */
  limits?: Partial<ConnectionLimits>;
  /** The hypervisor side of the guests; default a QemuDomainDriver (tests pass the fake). */
  driver?: DomainDriver;
  /** `--http HOST:PORT`: the web manager and the API on loopback TCP, with a token (docs/web.md). */
  http?: string;
  /** The web manager's built files (default dist/web; tests pass their own). */
  webRoot?: string;
}

export interface RunningDaemon {
  dirs: ManagerDirs;
  app: FastifyInstance;
  manager: Manager;
  store: Store;
  /** The web listener, with `--http`. */
  http?: HttpListener;
  /** Stops serving and lets go of the guests without stopping them. */
  stop(): Promise<void>;
}

export { DefaultConnectionLimits, type ConnectionLimits };

/**
 * Starts a daemon in this process. The manager, the store, fastify and the API schemas are
 * imported here, at the first start, not with this module (the CLI imports it for every
 * `virtkit daemon`, and its help).
 */
export async function startDaemon(opts: DaemonOptions = {}): Promise<RunningDaemon> {
  return (await import('./start.js')).startDaemon(opts);
}

/** Runs the daemon until SIGTERM or SIGINT. */
export async function runDaemon(opts: DaemonOptions = {}): Promise<void> {
  // Handlers go in before start-up: a supervisor may signal as soon as the socket appears,
  // and a signal with no handler would kill the process instead of stopping it cleanly.
  let signalled: NodeJS.Signals | undefined;
  let wake = (): void => {};
  const onSignal = (signal: NodeJS.Signals): void => {
    signalled = signal;
    wake();
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  // Loading and starting grow V8's young generation to its most (2 x 16 MiB), which an idle
  // daemon would keep; kept small until the daemon listens (young-generation.ts).
  const daemon = await smallYoungGenerationWhile(() => startDaemon(opts));
  const logTarget = opts.logFile === '-' ? 'stderr' : (opts.logFile ?? join(daemon.dirs.stateDir, 'daemon.log'));
  process.stderr.write(`virtkit daemon: pid ${process.pid} listening on ${daemon.dirs.socketPath} (log: ${logTarget})\n`);
  if (daemon.http) process.stderr.write(`virtkit daemon: web manager on ${daemon.http.url} (virtkit ui opens it with the token)\n`);
  if (signalled === undefined) await new Promise<void>((resolve) => { wake = resolve; });
  daemon.app.log.info({ signal: signalled }, 'daemon stopping; guests keep running');
  try {
    await daemon.stop();
  } catch (err) {
    process.stderr.write(`virtkit daemon: error while stopping: ${errorMessage(err)}\n`);
  }
}
