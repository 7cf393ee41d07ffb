/**
 * What `startDaemon` does (index.ts is the daemon's face and loads this module when a daemon
 * starts): opens the store, re-attaches to the guests it finds alive, registers the API and
 * listens on DIR/virtkit.sock. Everything the manager needs is imported from here, so nothing
 * of it is loaded before the process knows it runs a daemon.
 */
import { chmod, chown, mkdir, readFile, rm } from 'node:fs/promises';
import * as os from 'node:os';
import { join } from 'node:path';
import { ApiVersion } from '../api/index.js';
import { managerDirs } from '../api/index.js';
import { QemuDomainDriver } from '../qemu/index.js';
import { openStore } from '../store/index.js';
import { VirtkitError, errorMessage } from '../util/errors.js';
import { AccessPolicy } from './access.js';
import { DefaultConnectionLimits, effectiveMaxConnections, type ConnectionLimits } from './connection-limits.js';
import type { DaemonOptions, RunningDaemon } from './index.js';
import { GroupDatabase } from './groups.js';
import { Manager } from './manager.js';
import { PoolService } from './pools.js';
import { NetworkService } from './networks.js';
import { BootIdPath } from './domain-records.js';
import { reconcile } from './reconcile.js';
import { LogFile } from './log-file.js';
import { parseHttpAddress } from './http-address.js';
import { createApp, registerApi, type LoggerConfig } from './server.js';
import { correctStateDirModes, createPrivately, openPrivateFile } from './state-modes.js';

/** The kernel's boot id, or VIRTKIT_BOOT_ID when set (tests simulate a host reboot with it). */
export async function currentBootId(): Promise<string> {
  const fromEnv = process.env.VIRTKIT_BOOT_ID;
  if (fromEnv) return fromEnv;
  return (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();
}

/** The access policy of the daemon's groups; group names are resolved once, at start. */
function accessPolicyOf(opts: DaemonOptions, groups: GroupDatabase): AccessPolicy {
  if (opts.adminGroup !== undefined && opts.socketGroup === undefined) {
    throw new VirtkitError('argument.invalid', '--admin-group needs --socket-group: the socket\'s group decides who can connect at all',
      { adminGroup: opts.adminGroup });
  }
  return new AccessPolicy({
    groups,
    ...(opts.socketGroup !== undefined ? { socketGid: groups.gidOf(opts.socketGroup) } : {}),
    ...(opts.adminGroup !== undefined ? { adminGid: groups.gidOf(opts.adminGroup) } : {}),
  });
}

/** The defaults with `given` over them; timeouts must be positive (zero would mean none). */
function connectionLimitsOf(given: Partial<ConnectionLimits> = {}): ConnectionLimits {
  const limits = { ...DefaultConnectionLimits, ...given };
  const timeouts = { idleTimeoutMs: '--idle-timeout', headersTimeoutMs: '--headers-timeout' } as const;
  for (const [key, option] of Object.entries(timeouts) as [keyof typeof timeouts, string][]) {
    if (!(limits[key] > 0)) {
      throw new VirtkitError('argument.invalid', `${option}: must be more than 0 (a timeout of 0 would be no timeout)`, { option, [key]: limits[key] });
    }
  }
  return limits;
}

export async function startDaemon(opts: DaemonOptions): Promise<RunningDaemon> {
  const dirs = managerDirs({ isRoot: process.getuid?.() === 0, home: os.homedir(), env: process.env },
    { ...(opts.stateDir ? { stateDir: opts.stateDir } : {}), ...(opts.runDir ? { runDir: opts.runDir } : {}) });
  const accessPolicy = accessPolicyOf(opts, new GroupDatabase());
  const limits = connectionLimitsOf(opts.limits);
  // A bad --http fails before anything starts.
  const httpAddress = opts.http === undefined ? undefined : parseHttpAddress(opts.http);
  await mkdir(dirs.stateDir, { recursive: true, mode: 0o700 });
  await mkdir(dirs.runDir, { recursive: true, mode: 0o700 });
  // Before anything is opened or served: a state dir an older version left readable is private again.
  correctStateDirModes({ stateDir: dirs.stateDir, runDir: dirs.runDir, socketGid: accessPolicy.socketGid });
  const level = opts.logLevel ?? 'info';
  const logFile = opts.logFile ?? join(dirs.stateDir, 'daemon.log');
  if (logFile !== '-') openPrivateFile(logFile);
  // Not pino's file destination: a full disk must cost log lines, not the daemon (log-file.ts).
  const logger: LoggerConfig = logFile === '-' ? { level, stream: process.stderr } : { level, stream: new LogFile(logFile) };
  const app = createApp(logger, limits);
  const store = createPrivately(() => openStore(dirs.stateDir));
  try {
    const bootId = await currentBootId();
    const pools = new PoolService(store);
    const driver = opts.driver
      ?? new QemuDomainDriver({ ...(opts.qemuBinary ? { binary: opts.qemuBinary } : {}), cacheDir: join(dirs.stateDir, 'cache') });
    // Host networking needs root (bridges, taps, nftables); the fake driver's daemons leave it out.
    const networks = opts.driver === undefined ? new NetworkService(store, dirs.stateDir, app.log) : undefined;
    const manager = new Manager({ store, runRoot: dirs.runDir, log: app.log, driver, resolveVolumes: (def) => pools.resolveVolumes(def), networks,
      saveDir: join(dirs.stateDir, 'save'), nvramDir: join(dirs.stateDir, 'nvram') });
    const report = await reconcile(manager, store, app.log);
    app.log.info({ ...report, stateDir: dirs.stateDir, runDir: dirs.runDir }, 'reconciled with the run directories');
    // Read before autostartOnce records this boot: networks autostart with the first daemon start after a boot, before guests.
    if (networks) app.log.info(await networks.reconcile(manager.liveNames(), { firstStartAfterBoot: (await store.read(BootIdPath)) !== bootId }), 'reconciled networks and taps');
    await registerApi(app, {
      manager,
      store,
      pools,
      auditLogPath: join(dirs.stateDir, 'audit.log'),
      accessPolicy,
      info: () => ({ version: ApiVersion, pid: process.pid, stateDir: dirs.stateDir, runDir: dirs.runDir, bootId,
        revision: store.revision, driver: driver.kind, apiExtensions: ['events-resume', 'snoop', 'events-websocket', 'console-websocket', 'pools', 'access-classes', 'rpc-channel'] }),
    });
    // We own the store lock, so a socket file left here is a dead daemon's.
    await rm(dirs.socketPath, { force: true });
    const oldMask = process.umask(0o077);
    try {
      await app.listen({ path: dirs.socketPath });
    } finally {
      process.umask(oldMask);
    }
    if (accessPolicy.socketGid !== undefined) {
      await chown(dirs.socketPath, process.getuid?.() ?? 0, accessPolicy.socketGid);
      await chmod(dirs.socketPath, 0o660);
    } else {
      await chmod(dirs.socketPath, 0o600);
    }
    app.log.info({ socket: dirs.socketPath, pid: process.pid, limits: { ...limits, maxConnections: effectiveMaxConnections(limits) } }, 'daemon listening');
    // The web listener's modules (and ws, for its VNC bridge) are loaded only with --http.
    const http = httpAddress === undefined ? undefined : await (await import('./http-listener.js')).startHttpListener({
      address: httpAddress, socketPath: dirs.socketPath, stateDir: dirs.stateDir, log: app.log,
      runDirOf: (name) => manager.runDirOfLive(name), ...(opts.webRoot ? { webRoot: opts.webRoot } : {}),
    });
    // Autostart runs after the socket is up, so clients can watch guests come up.
    void manager.autostartOnce(bootId).catch((err: unknown) => app.log.error({ err: errorMessage(err) }, 'autostart failed'));
    let stopping: Promise<void> | undefined;
    return {
      dirs, app, manager, store, ...(http ? { http } : {}),
      stop: () => (stopping ??= (async () => {
        await http?.close();
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

