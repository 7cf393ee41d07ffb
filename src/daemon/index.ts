/**
 * `virtkit daemon`: the manager process. Opens the store (one daemon per state dir), re-attaches
 * to the guests it finds alive, serves the API on DIR/virtkit.sock and runs autostart once per
 * host boot. SIGTERM/SIGINT stop the daemon and nothing else: guests keep running.
 */
import { chmod, chown, mkdir, readFile, rm } from 'node:fs/promises';
import * as os from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { ApiVersion } from '../api/index.js';
import { managerDirs, type ManagerDirs } from '../api/index.js';
import { QemuDomainDriver } from '../qemu/index.js';
import type { DomainDriver } from '../qemu/index.js';
import { openStore, type Store } from '../store/index.js';
import { VirtkitError, errorMessage } from '../util/errors.js';
import { Manager } from './manager.js';
import { PoolService } from './pools.js';
import { reconcile } from './reconcile.js';
import { createApp, registerApi, type LoggerConfig } from './server.js';

export interface DaemonOptions {
  stateDir?: string;
  runDir?: string;
  /** Group allowed to use the socket (mode 0660); default: owner only (0600). */
  socketGroup?: string;
  /** Log file; '-' for stderr. Default: STATE_DIR/daemon.log. */
  logFile?: string;
  logLevel?: string;
  qemuBinary?: string;
  /** The hypervisor side of the guests; default a QemuDomainDriver (tests pass the fake). */
  driver?: DomainDriver;
}

export interface RunningDaemon {
  dirs: ManagerDirs;
  app: FastifyInstance;
  manager: Manager;
  store: Store;
  /** Stops serving and lets go of the guests without stopping them. */
  stop(): Promise<void>;
}

/** The kernel's boot id, or VIRTKIT_BOOT_ID when set (tests simulate a host reboot with it). */
export async function currentBootId(): Promise<string> {
  const fromEnv = process.env.VIRTKIT_BOOT_ID;
  if (fromEnv) return fromEnv;
  return (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();
}

async function groupId(group: string): Promise<number> {
  if (/^\d+$/.test(group)) return Number(group);
  const text = await readFile('/etc/group', 'utf8').catch(() => '');
  for (const line of text.split('\n')) {
    const [name, , gid] = line.split(':');
    if (name === group && gid !== undefined) return Number(gid);
  }
  throw new VirtkitError('argument.invalid', `no such group: ${group}`, { group });
}

export async function startDaemon(opts: DaemonOptions = {}): Promise<RunningDaemon> {
  const dirs = managerDirs({ isRoot: process.getuid?.() === 0, home: os.homedir(), env: process.env },
    { ...(opts.stateDir ? { stateDir: opts.stateDir } : {}), ...(opts.runDir ? { runDir: opts.runDir } : {}) });
  await mkdir(dirs.stateDir, { recursive: true, mode: 0o700 });
  await mkdir(dirs.runDir, { recursive: true, mode: 0o700 });
  const level = opts.logLevel ?? 'info';
  const logger: LoggerConfig = opts.logFile === '-'
    ? { level, stream: process.stderr }
    : { level, file: opts.logFile ?? join(dirs.stateDir, 'daemon.log') };
  const app = createApp(logger);
  const store = await openStore(dirs.stateDir);
  try {
    const bootId = await currentBootId();
    const pools = new PoolService(store);
    const driver = opts.driver
      ?? new QemuDomainDriver({ ...(opts.qemuBinary ? { binary: opts.qemuBinary } : {}), cacheDir: join(dirs.stateDir, 'cache') });
    const manager = new Manager({ store, runRoot: dirs.runDir, log: app.log, driver, resolveVolumes: (def) => pools.resolveVolumes(def) });
    const report = await reconcile(manager, store, app.log);
    app.log.info({ ...report, stateDir: dirs.stateDir, runDir: dirs.runDir }, 'reconciled with the run directories');
    await registerApi(app, {
      manager,
      store,
      pools,
      auditLogPath: join(dirs.stateDir, 'audit.log'),
      info: () => ({ version: ApiVersion, pid: process.pid, stateDir: dirs.stateDir, runDir: dirs.runDir, bootId,
        revision: store.revision, driver: driver.kind, apiExtensions: ['events-resume', 'snoop', 'events-websocket', 'console-websocket', 'pools', 'access-classes'] }),
    });
    // We own the store lock, so a socket file left here is a dead daemon's.
    await rm(dirs.socketPath, { force: true });
    const oldMask = process.umask(0o077);
    try {
      await app.listen({ path: dirs.socketPath });
    } finally {
      process.umask(oldMask);
    }
    if (opts.socketGroup) {
      await chown(dirs.socketPath, process.getuid?.() ?? 0, await groupId(opts.socketGroup));
      await chmod(dirs.socketPath, 0o660);
    } else {
      await chmod(dirs.socketPath, 0o600);
    }
    app.log.info({ socket: dirs.socketPath, pid: process.pid }, 'daemon listening');
    // Autostart runs after the socket is up, so clients can watch guests come up.
    void manager.autostartOnce(bootId).catch((err: unknown) => app.log.error({ err: errorMessage(err) }, 'autostart failed'));
    let stopping: Promise<void> | undefined;
    return {
      dirs, app, manager, store,
      stop: () => (stopping ??= (async () => {
        // Console clients first: upgraded sockets are not closed by the HTTP server itself.
        manager.detachAll();
        await app.close();
        await store.close();
        await rm(dirs.socketPath, { force: true });
      })()),
    };
  } catch (err) {
    await store.close();
    throw err;
  }
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
  const daemon = await startDaemon(opts);
  const logTarget = opts.logFile === '-' ? 'stderr' : (opts.logFile ?? join(daemon.dirs.stateDir, 'daemon.log'));
  process.stderr.write(`virtkit daemon: pid ${process.pid} listening on ${daemon.dirs.socketPath} (log: ${logTarget})\n`);
  if (signalled === undefined) await new Promise<void>((resolve) => { wake = resolve; });
  daemon.app.log.info({ signal: signalled }, 'daemon stopping; guests keep running');
  try {
    await daemon.stop();
  } catch (err) {
    process.stderr.write(`virtkit daemon: error while stopping: ${errorMessage(err)}\n`);
  }
}
