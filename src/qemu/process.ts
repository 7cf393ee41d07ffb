/**
 * QEMU processes, the driver's low-level mechanics: launch a command line detached with a run
 * directory, re-attach by run directory, and control (stop gracefully then by force, destroy,
 * pause, resume, reset, reboot, restart a kept guest, end a kept guest). What to do when the
 * guest stops itself (on_poweroff / on_reboot / on_crash) is decided in driver/events.ts, not
 * here. See docs/qemu-driver.md for the run directory layout and how an exit is classified.
 */
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect as netConnect, type Socket } from 'node:net';
import { resolve as resolvePath } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { VirtkitError, isVirtkitError } from '../util/errors.js';
import { mark } from '../util/timeline.js';
import { QmpClient } from './qmp/client.js';
import type { RunState } from './qmp/commands.js';
import type { QmpEvent } from './qmp/events.js';
import type { ExitInfo, ForcedBy } from './driver/types.js';
import { runPaths, type RunPaths } from './command/run-paths.js';
import { runActionsOf, type RunActions } from './process/actions.js';
import { isProcessAlive, isQemuOfRunDir, parsePidfile, readCmdline } from './process/proc.js';
import { logSize, shutdownFromLog } from './process/shutdown-trace.js';
import { qemuErrorSummary, readLogSince, spawnQemu, type QemuCommandLine } from './process/spawn.js';
import { connectWhenCreated, notListeningYet } from './process/socket-wait.js';

export type { QemuCommandLine } from './process/spawn.js';
export type { RunActions } from './process/actions.js';
export { runPaths, type RunPaths } from './command/run-paths.js';

export type { ExitInfo, ExitReason, ForcedBy } from './driver/types.js';

export interface LaunchCommandOptions {
  command: QemuCommandLine;
  runDir: string;
  /** Leave the guest paused (QEMU started with -S stays in prelaunch). Default false. */
  paused?: boolean;
  /** Bound on QEMU creating its QMP socket and answering. Default 15000 ms. */
  startTimeoutMs?: number;
  /** Own session, outliving the caller (default). False for short-lived helpers such as the capabilities probe. */
  detached?: boolean;
  /**
   * The command line's console socket waits for its first client (`wait=on`: QEMU blocks before
   * it creates the machine): connect it as soon as it exists and hold that connection for
   * takeConsole(), so the console is attached before the guest's first instruction.
   */
  consoleFirst?: boolean;
}

export interface ShutdownOptions {
  /** How long the guest may take to power off before it is stopped by force. */
  timeoutMs: number;
  /**
   * When QEMU keeps the guest after it powered off (`-action shutdown=pause`): true leaves QEMU
   * there, the guest stopped in state `shutdown`; false (the default) ends QEMU. The guest
   * handle passes the definition's `on_poweroff: preserve` (StopOptions).
   */
  preserve?: boolean;
}

const POLL_MS = 100;
/**
 * A power-button press the guest's OS is not listening for yet (still booting) is lost, as on
 * real hardware: while no power-off is seen, press again this often. Guest kit guests report
 * ready only once they listen, so a press after the ready marker is heard the first time.
 */
const REPRESS_MS = 10_000;
/**
 * SeaBIOS, entered again after a reset, resets the machine once more from its side (to get its
 * pristine image back), often with two requests in a row (the ACPI reset register, then the
 * keyboard controller): guest resets that `-action reboot=shutdown` would turn into shutdowns.
 * A reset of ours keeps `reboot=reset` until those came and FIRMWARE_QUIET_MS passed without
 * another one, FIRMWARE_RESET_MS at most.
 */
const FIRMWARE_RESET_MS = 5000;
const FIRMWARE_QUIET_MS = 1000;
/**
 * QMP closes first when QEMU exits, the process follows within moments. A QMP connection that
 * closed while the process is still there this long after was lost (a protocol error, a
 * connection closed by someone else): it is reconnected, every RECONNECT_MS.
 */
const MONITOR_LOST_GRACE_MS = 3000;
const RECONNECT_MS = 500;

/** QMP was lost while QEMU lives, or found again. */
export type MonitorChange = 'lost' | 'restored';

export class QemuProcess {
  readonly paths: RunPaths;
  /** Resolves once QEMU is gone, for spawned and attached processes alike. */
  readonly exited: Promise<ExitInfo>;

  /** What QEMU does by itself on a guest reboot, power-off and panic, from its command line. */
  readonly actions: Readonly<RunActions>;
  /** QEMU's arguments: as launched, or read from /proc for an attached QEMU (program first then). */
  readonly commandLine: readonly string[];
  private shutdownEvent: { guest: boolean; reason: string } | undefined;
  /** The guest was found powered off and kept by QEMU (state `shutdown`) before we saw its SHUTDOWN. */
  private foundPoweredOff = false;
  private panicked = false;
  private powerdownRequested = false;
  private forcedBy: ForcedBy | undefined;
  private destroying = false;
  private unwatched = false;
  private childExit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private exitedFlag = false;
  private isChild: boolean;
  /** The QMP connection now: replaced when a lost one is reconnected. */
  private client: QmpClient;
  private readonly eventListeners = new Set<(ev: QmpEvent) => void>();
  private readonly monitorListeners = new Set<(change: MonitorChange) => void>();
  /**
   * Where qemu.log stood when the QMP connection last closed: QEMU's shutdown requests logged
   * from there on were not seen as QMP events (shutdown-trace.ts). Cleared once reconnected.
   */
  private unseenLogFrom: number | undefined;
  /** The console connection made during launch, until takeConsole(). */
  private heldConsole: Socket | undefined;

  private constructor(
    readonly pid: number,
    readonly runDir: string,
    qmp: QmpClient,
    setup: { argv: readonly string[]; child?: import('node:child_process').ChildProcess },
  ) {
    this.paths = runPaths(runDir);
    this.actions = runActionsOf(setup.argv);
    this.commandLine = [...setup.argv];
    const child = setup.child;
    this.client = qmp;
    this.wire(qmp);
    this.onQmpEvent((ev) => {
      if (ev.event === 'SHUTDOWN') {
        const data = (ev as QmpEvent<'SHUTDOWN'>).data;
        // keep the guest's own power-off when a `quit` follows it (on_poweroff: preserve)
        if (!this.shutdownEvent?.guest) this.shutdownEvent = { guest: data.guest, reason: data.reason };
      } else if (ev.event === 'GUEST_PANICKED') {
        this.panicked = true;
      }
    });
    this.isChild = child !== undefined;
    child?.once('exit', (code, signal) => (this.childExit = { code, signal }));
    this.exited = this.watchExit();
  }

  /**
   * Spawns QEMU for a command line (from buildCommand) in `runDir` (created 0700), detached in
   * its own session with stdout/stderr appended to runDir/qemu.log, and connects QMP.
   * Throws 'qemu.failed-to-start' carrying QEMU's own stderr when it exits during start-up,
   * 'qemu.not-found' when the binary is missing, 'domain.invalid-state' if a live QEMU
   * already owns the run directory.
   */
  static async launchCommand(opts: LaunchCommandOptions): Promise<QemuProcess> {
    const runDir = resolvePath(opts.runDir);
    const paths = runPaths(runDir);
    await mkdir(runDir, { recursive: true, mode: 0o700 });
    await chmod(runDir, 0o700);
    const owner = await liveOwner(paths);
    if (owner !== undefined) {
      throw new VirtkitError('domain.invalid-state', `a QEMU (pid ${owner}) is already running in ${runDir}`, { runDir, pid: owner });
    }
    await Promise.all([paths.qmpSocket, paths.consoleSocket, paths.pidFile].map((p) => rm(p, { force: true })));

    const { child, logOffset } = await spawnQemu(opts.command, paths.qemuLog, { detached: opts.detached ?? true });
    const pid = child.pid!;
    mark('qemu: spawned');
    let exitedEarly: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    child.once('exit', (code, signal) => (exitedEarly = { code, signal }));

    const startFailure = async (why: string): Promise<VirtkitError> => {
      if (!exitedEarly) {
        try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
        for (let i = 0; i < 20 && !exitedEarly; i++) await sleep(50);
      }
      const stderr = await readLogSince(paths.qemuLog, logOffset);
      const summary = qemuErrorSummary(stderr);
      return new VirtkitError('qemu.failed-to-start', summary ? `${summary}` : why,
        { binary: opts.command.binary, runDir, stderr, exitCode: exitedEarly?.code ?? null, signal: exitedEarly?.signal ?? null, log: paths.qemuLog });
    };

    const deadline = Date.now() + (opts.startTimeoutMs ?? 15_000);
    // Connected as soon as QEMU creates the sockets (socket-wait.ts); QMP greets once QEMU's main
    // loop runs, i.e. after the machine is created (and, without -S, after the CPUs started).
    const waitFor = <T>(path: string, what: string, attempt: () => Promise<T>): Promise<T> => connectWhenCreated(path, attempt, {
      deadline,
      giveUp: () => (exitedEarly ? new Error(`QEMU exited during start-up (status ${String(exitedEarly.code ?? exitedEarly.signal)})`) : undefined),
      timedOut: () => new Error(`QEMU did not open its ${what} ${path} in time`),
      // a QMP socket closed before the greeting (QEMU on its way out): wait, the exit tells
      notYet: (err) => notListeningYet(err) ?? (isVirtkitError(err, 'qmp.disconnected') ? 'missing' : undefined),
    });
    const connectQmp = waitFor(paths.qmpSocket, 'QMP socket',
      () => QmpClient.connect(paths.qmpSocket, { timeoutMs: Math.max(1000, deadline - Date.now()) }));
    const connectConsole = opts.consoleFirst
      ? waitFor(paths.consoleSocket, 'console socket', () => connectUnix(paths.consoleSocket)).then((sock) => {
        mark('console: connected (QEMU waited for it)');
        return sock;
      })
      : Promise.resolve(undefined);
    const [qmpResult, consoleResult] = await Promise.allSettled([connectQmp, connectConsole]);
    if (qmpResult.status === 'rejected' || consoleResult.status === 'rejected') {
      if (qmpResult.status === 'fulfilled') qmpResult.value.close();
      if (consoleResult.status === 'fulfilled') consoleResult.value?.destroy();
      const err = (qmpResult.status === 'rejected' ? qmpResult.reason : (consoleResult as PromiseRejectedResult).reason) as Error;
      throw await startFailure(isVirtkitError(err) ? `QMP did not answer: ${err.message}` : err.message);
    }
    const qmp = qmpResult.value;
    mark('qmp: connected');
    // QEMU writes the pidfile itself (-pidfile); a command line without one still gets one, so attach works.
    if (parsePidfile(await readFile(paths.pidFile, 'utf8').catch(() => '')) === undefined) {
      await writeFile(paths.pidFile, `${pid}\n`, { mode: 0o600 });
    }
    const proc = new QemuProcess(pid, runDir, qmp, { argv: opts.command.argv, child });
    if (exitedEarly) proc.childExit = exitedEarly;
    if (consoleResult.value) proc.holdConsole(consoleResult.value);
    await proc.applyStartState(opts.paused ?? false);
    return proc;
  }

  /**
   * Re-attaches to the QEMU of a run directory. Refuses ('process.stale') a pidfile whose pid
   * is gone, or whose process is not a QEMU naming this run dir's QMP socket (and `uuid`).
   * QEMU's actions come from its command line.
   */
  static async attach(runDir: string, opts: { uuid?: string; timeoutMs?: number } = {}): Promise<QemuProcess> {
    const dir = resolvePath(runDir);
    const paths = runPaths(dir);
    const text = await readFile(paths.pidFile, 'utf8').catch(() => undefined);
    if (text === undefined) throw new VirtkitError('process.stale', `no pidfile in ${dir}`, { runDir: dir });
    const pid = parsePidfile(text);
    if (pid === undefined) throw new VirtkitError('process.stale', `pidfile ${paths.pidFile} does not hold a pid`, { runDir: dir });
    if (!(await isProcessAlive(pid))) throw new VirtkitError('process.stale', `QEMU pid ${pid} from ${paths.pidFile} is gone`, { runDir: dir, pid });
    const cmdline = await readCmdline(pid);
    if (!cmdline || !isQemuOfRunDir(cmdline, paths.qmpSocket, opts.uuid)) {
      throw new VirtkitError('process.stale', `pid ${pid} from ${paths.pidFile} is not the QEMU of ${dir}${opts.uuid ? ` (uuid ${opts.uuid})` : ''}`,
        { runDir: dir, pid, cmdline: cmdline?.slice(0, 8) });
    }
    let qmp: QmpClient;
    try {
      qmp = await QmpClient.connect(paths.qmpSocket, { timeoutMs: opts.timeoutMs ?? 5000 });
    } catch (err) {
      if (!isVirtkitError(err, 'qmp.timeout')) throw err;
      // QEMU queues a second QMP client until the first one leaves
      throw new VirtkitError('qmp.timeout', `QEMU pid ${pid} in ${dir} did not greet on QMP: it serves one QMP client at a time and another one holds it`,
        { runDir: dir, pid }, { cause: err });
    }
    return new QemuProcess(pid, dir, qmp, { argv: cmdline });
  }

  /** The QMP connection now (a lost one is replaced once QEMU answers again). */
  get qmp(): QmpClient {
    return this.client;
  }

  /** Every QMP event, across reconnections; returns the unsubscribe function. */
  onQmpEvent(fn: (ev: QmpEvent) => void): () => void {
    this.eventListeners.add(fn);
    return () => this.eventListeners.delete(fn);
  }

  /**
   * Test hook: closes the QMP connection as a lost one would be (QEMU lives on, unaware); the
   * process reconnects by itself, as after any loss.
   */
  dropMonitorConnection(): void {
    this.client.close();
  }

  /** QMP lost while QEMU lives, and found again; returns the unsubscribe function. */
  onMonitorChange(fn: (change: MonitorChange) => void): () => void {
    this.monitorListeners.add(fn);
    return () => this.monitorListeners.delete(fn);
  }

  async status(): Promise<RunState> {
    return (await this.qmp.execute('query-status')).status;
  }

  async pause(): Promise<void> {
    await this.qmp.execute('stop');
  }

  async resume(): Promise<void> {
    await this.qmp.execute('cont');
  }

  /**
   * Hard reset, like pressing the reset button. Under `-action reboot=shutdown` (on_reboot other
   * than restart) QEMU would turn it into a shutdown: see resetMachine. A guest reset while
   * paused meets its firmware's own reset only when resumed, after QEMU's action is restored.
   */
  async reset(): Promise<void> {
    const running = (await this.status()) === 'running';
    await this.resetMachine({ resume: false, firmwareRuns: running });
  }

  /**
   * Clean reboot: the guest powers off through ACPI, QEMU is told to pause instead of exiting,
   * then it is reset and resumed; QEMU's shutdown action is then what its command line set
   * (the definition's on_poweroff / on_reboot). Throws 'operation.timeout' if the guest ignores
   * the button.
   */
  async reboot(opts: { timeoutMs?: number } = {}): Promise<void> {
    const timeoutMs = opts.timeoutMs ?? 60_000;
    await this.qmp.execute('set-action', { shutdown: 'pause' });
    try {
      const down = this.qmp.waitForEvent('SHUTDOWN', { timeoutMs });
      await this.qmp.execute('system_powerdown');
      try {
        await down;
      } catch (err) {
        if (isVirtkitError(err, 'qmp.timeout')) {
          throw new VirtkitError('operation.timeout', `guest did not power off for the reboot within ${timeoutMs} ms`, { timeoutMs });
        }
        throw err;
      }
      this.shutdownEvent = undefined;
      await this.resetMachine({ resume: true, firmwareRuns: true });
    } finally {
      if (!this.qmp.closeReason) await this.qmp.execute('set-action', { shutdown: this.actions.shutdown });
    }
  }

  /**
   * Starts the guest again after it stopped itself while QEMU kept it (powered off under
   * `-action shutdown=pause`, rebooted under `reboot=shutdown`, panicked under `panic=pause`):
   * what on_poweroff / on_reboot / on_crash `restart` ask for.
   */
  async restartGuest(): Promise<void> {
    this.shutdownEvent = undefined;
    this.foundPoweredOff = false;
    this.panicked = false;
    await this.resetMachine({ resume: true, firmwareRuns: true });
  }

  /**
   * Graceful stop: ACPI power button (system_powerdown), then wait up to `timeoutMs` for the
   * guest to power off; after the timeout it is stopped by force (quit, SIGTERM, SIGKILL).
   * The guest's power-off (QEMU's SHUTDOWN event) is the clean end: QEMU exits by itself under
   * `-action shutdown=poweroff`; when QEMU keeps the guest instead, it is ended with `quit`,
   * or left there, stopped, with `preserve` (see ShutdownOptions). A guest already powered off
   * and kept is handled the same way at once; a panicked one hears no button and is forced.
   * Returns which way it ended.
   */
  async shutdown(opts: ShutdownOptions): Promise<'clean' | 'forced'> {
    if (this.exitedFlag) return this.forcedBy ? 'forced' : 'clean';
    const preserve = opts.preserve ?? false;
    const state = await this.status().catch(() => undefined);
    if (this.panicked || state === 'guest-panicked') {
      // a panicked guest kept by QEMU hears no power button
      await this.forceStop();
      return 'forced';
    }
    if (state === 'shutdown' && !this.shutdownEvent?.guest) this.foundPoweredOff = true;
    if (this.shutdownEvent?.guest || this.foundPoweredOff) return this.afterPowerOff(preserve);
    this.powerdownRequested = true;
    const deadline = Date.now() + opts.timeoutMs;
    let nextPress = 0;
    while (Date.now() < deadline && !this.exitedFlag) {
      if (this.shutdownEvent?.guest) return this.afterPowerOff(preserve);
      if (Date.now() >= nextPress) {
        nextPress = Date.now() + REPRESS_MS;
        try {
          await this.qmp.execute('system_powerdown', undefined, { timeoutMs: 5000 });
        } catch (err) {
          if (!isVirtkitError(err, 'qmp.disconnected') && !isVirtkitError(err, 'qmp.timeout')) throw err;
        }
      }
      await Promise.race([this.exited, sleep(POLL_MS)]);
    }
    if (this.exitedFlag) return this.forcedBy ? 'forced' : 'clean';
    await this.forceStop();
    return 'forced';
  }

  /** Stops QEMU by force now (quit, then SIGTERM, then SIGKILL). */
  async destroy(): Promise<ExitInfo> {
    if (!this.exitedFlag) await this.forceStop();
    return this.exited;
  }

  /** Stops watching this QEMU and closes QMP; the guest keeps running. */
  detach(): void {
    this.unwatched = true;
    this.qmp.close();
  }

  /**
   * Just launched: a command line with -S holds the CPUs (prelaunch), one without runs them.
   * Known from the command line, so no status round trip stands between QMP and `cont`.
   */
  private async applyStartState(paused: boolean): Promise<void> {
    const held = this.commandLine.includes('-S');
    if (!paused && held) await this.qmp.execute('cont');
    if (paused && !held) await this.qmp.execute('stop');
  }

  /** Whether QEMU was started with its CPUs held (-S): nothing ran before the first `cont`. */
  get startedHeld(): boolean {
    return this.commandLine.includes('-S');
  }

  /** Keeps the console connection made during launch (LaunchCommandOptions.consoleFirst) until it is taken. */
  private holdConsole(sock: Socket): void {
    this.heldConsole = sock;
    sock.on('error', () => undefined); // until taken: QEMU going away is told by `exited`
    const drop = (): void => { if (this.heldConsole === sock) sock.destroy(); };
    this.exited.then(drop, drop);
  }

  /**
   * The console connection made during launch, once (later calls, and a process launched
   * without consoleFirst, get undefined). Until taken it is not read: QEMU's writes wait in
   * the socket, none is lost.
   */
  takeConsole(): Socket | undefined {
    const sock = this.heldConsole;
    this.heldConsole = undefined;
    return sock;
  }

  /**
   * `system_reset`, and `cont` when `resume`. Under `-action reboot=shutdown` QEMU 7.2 turns a
   * QMP system_reset into a shutdown too, so the reboot action is `reset` around it; it goes back
   * to the command line's once the firmware's own follow-up resets are over (when the firmware
   * runs: `firmwareRuns`), so those do not turn into shutdowns either.
   */
  private async resetMachine(opts: { resume: boolean; firmwareRuns: boolean }): Promise<void> {
    if (this.actions.reboot === 'reset') {
      await this.qmp.execute('system_reset');
      if (opts.resume) await this.qmp.execute('cont');
      return;
    }
    const firmware = this.watchFirmwareResets();
    try {
      await this.qmp.execute('set-action', { reboot: 'reset' });
      await this.qmp.execute('system_reset');
      if (opts.resume) await this.qmp.execute('cont');
      if (opts.firmwareRuns) await firmware.settled;
    } finally {
      firmware.dispose();
      if (!this.qmp.closeReason) await this.qmp.execute('set-action', { reboot: this.actions.reboot });
    }
  }

  /**
   * `settled` resolves once the firmware's follow-up resets are over: a first guest RESET, then
   * FIRMWARE_QUIET_MS without another; FIRMWARE_RESET_MS after the call at the latest.
   */
  private watchFirmwareResets(): { settled: Promise<void>; dispose: () => void } {
    let off: () => void = () => undefined;
    const timers: NodeJS.Timeout[] = [];
    const settled = new Promise<void>((resolve) => {
      let quiet: NodeJS.Timeout | undefined;
      off = this.qmp.on('RESET', (ev) => {
        if (ev.data['guest'] !== true) return;
        clearTimeout(quiet);
        quiet = setTimeout(resolve, FIRMWARE_QUIET_MS);
        timers.push(quiet);
      });
      timers.push(setTimeout(resolve, FIRMWARE_RESET_MS));
      void this.qmp.closed.then(() => resolve());
    });
    return { settled, dispose: () => { off(); for (const t of timers) clearTimeout(t); } };
  }

  /** The guest powered off during or before shutdown(): QEMU exits by itself, or is ended, or kept. */
  private async afterPowerOff(preserve: boolean): Promise<'clean' | 'forced'> {
    if (this.actions.shutdown === 'poweroff') {
      // QEMU is on its way out by itself
      await Promise.race([this.exited, sleep(3000)]);
    } else if (preserve) {
      return 'clean';
    }
    if (!this.exitedFlag) await this.endKeptGuest();
    return this.forcedBy ? 'forced' : 'clean';
  }

  /** Ends a QEMU that keeps a guest that is no longer running (powered off or panicked): `quit`, force as a fallback. */
  async endKeptGuest(): Promise<void> {
    if (this.exitedFlag) return;
    await this.qmp.execute('quit', undefined, { timeoutMs: 2000 }).catch(() => undefined);
    if (await this.waitGone(3000)) return;
    await this.forceStop();
  }

  private async forceStop(): Promise<void> {
    this.destroying = true;
    this.forcedBy = 'quit';
    await this.qmp.execute('quit', undefined, { timeoutMs: 2000 }).catch(() => undefined);
    if (await this.waitGone(3000)) return;
    for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
      this.forcedBy = signal;
      try {
        process.kill(this.pid, signal);
      } catch {
        /* already gone */
      }
      if (await this.waitGone(3000)) return;
    }
    throw new VirtkitError('operation.timeout', `QEMU pid ${this.pid} survived SIGKILL`, { pid: this.pid });
  }

  private async waitGone(ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if (this.exitedFlag || !(await isProcessAlive(this.pid))) return true;
      await sleep(POLL_MS / 2);
    }
    return false;
  }

  private wire(client: QmpClient): void {
    client.on((ev) => {
      for (const fn of [...this.eventListeners]) fn(ev);
    });
  }

  /**
   * QMP closes when QEMU exits; then the pid must disappear too (polled: it may not be our
   * child). A QMP connection lost while QEMU stays is reconnected (MONITOR_LOST_GRACE_MS).
   */
  private async watchExit(): Promise<ExitInfo> {
    for (;;) {
      await this.client.closed;
      this.unseenLogFrom ??= logSize(this.paths.qemuLog);
      if (this.unwatched) return new Promise<never>(() => undefined);
      if (await this.waitReaped(MONITOR_LOST_GRACE_MS)) break;
      if (this.unwatched) return new Promise<never>(() => undefined);
      if (!(await this.reconnect())) break;
    }
    if (this.unwatched) return new Promise<never>(() => undefined);
    this.exitedFlag = true;
    // A power-off while QMP was lost reached nobody as an event; QEMU logged its request.
    if (!this.shutdownEvent?.guest) this.shutdownEvent = (await this.unseenShutdown()) ?? this.shutdownEvent;
    return this.classifyExit();
  }

  /** True once QEMU is gone; our own child only once reaped (exit status known, no zombie left), within reason. */
  private async waitReaped(ms: number): Promise<boolean> {
    const started = Date.now();
    const reapDeadline = started + 5000;
    for (;;) {
      if (this.unwatched) return false;
      if (this.childExit) return true;
      if (!this.isChild || Date.now() > reapDeadline) {
        if (!(await isProcessAlive(this.pid))) return true;
      }
      if (Date.now() - started > ms) return false;
      await sleep(POLL_MS / 2);
    }
  }

  /** Connects QMP again while QEMU lives; false when QEMU went away (or we stopped watching) meanwhile. */
  private async reconnect(): Promise<boolean> {
    this.notifyMonitor('lost');
    for (;;) {
      if (this.unwatched || this.childExit || !(await isProcessAlive(this.pid))) return false;
      try {
        const client = await QmpClient.connect(this.paths.qmpSocket, { timeoutMs: 2000 });
        if (this.unwatched) {
          client.close();
          return false;
        }
        this.client = client;
        this.wire(client);
        await this.replayUnseenStop();
        this.unseenLogFrom = undefined;
        this.notifyMonitor('restored');
        return true;
      } catch {
        await sleep(RECONNECT_MS);
      }
    }
  }

  /** The shutdown QEMU logged since QMP was lost, if any (QEMU started with ShutdownTraceArgs). */
  private async unseenShutdown(): Promise<{ guest: boolean; reason: string } | undefined> {
    if (this.unseenLogFrom === undefined) return undefined;
    return shutdownFromLog(await readLogSince(this.paths.qemuLog, this.unseenLogFrom));
  }

  /**
   * After a reconnection: a guest that stopped itself while QMP was lost, and that QEMU keeps
   * (powered off under shutdown=pause, panicked under panic=pause), is reported as the event
   * that was missed, so the power-off is known and the on_* policy answers it.
   */
  private async replayUnseenStop(): Promise<void> {
    const state = await this.status().catch(() => undefined);
    let missed: QmpEvent | undefined;
    if (state === 'shutdown' && !this.shutdownEvent?.guest) {
      const logged = await this.unseenShutdown();
      if (logged?.guest) missed = { event: 'SHUTDOWN', data: logged, timestamp: nowTimestamp() };
    } else if (state === 'guest-panicked' && !this.panicked) {
      missed = { event: 'GUEST_PANICKED', data: { action: 'pause' }, timestamp: nowTimestamp() };
    }
    if (missed) for (const fn of [...this.eventListeners]) fn(missed);
  }

  private notifyMonitor(change: MonitorChange): void {
    for (const fn of [...this.monitorListeners]) fn(change);
  }

  private classifyExit(): ExitInfo {
    const ev = this.shutdownEvent;
    const base = {
      ...(ev ? { shutdownReason: ev.reason } : {}),
      ...(this.forcedBy ? { forcedBy: this.forcedBy } : {}),
      ...(this.childExit ? { exitCode: this.childExit.code, signal: this.childExit.signal } : {}),
    };
    if (this.panicked || ev?.reason === 'guest-panic') return { reason: 'crashed', guestInitiated: true, ...base };
    if (ev?.guest || this.foundPoweredOff) return { reason: 'shutdown', guestInitiated: !this.powerdownRequested, ...base };
    if (this.destroying || ev) return { reason: 'destroyed', guestInitiated: false, ...base };
    return { reason: 'crashed', guestInitiated: false, ...base };
  }
}

function nowTimestamp(): { seconds: number; microseconds: number } {
  const ms = Date.now();
  return { seconds: Math.floor(ms / 1000), microseconds: (ms % 1000) * 1000 };
}

/** The pid of a live QEMU that owns this run dir, if any. */
async function liveOwner(paths: RunPaths): Promise<number | undefined> {
  const pid = parsePidfile(await readFile(paths.pidFile, 'utf8').catch(() => ''));
  if (pid === undefined || !(await isProcessAlive(pid))) return undefined;
  const cmdline = await readCmdline(pid);
  return cmdline && isQemuOfRunDir(cmdline, paths.qmpSocket) ? pid : undefined;
}

/** A connected unix socket, or the connect error (ENOENT, ECONNREFUSED...). */
function connectUnix(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = netConnect(path);
    const onError = (err: Error): void => {
      sock.destroy();
      reject(err);
    };
    sock.once('error', onError);
    sock.once('connect', () => {
      sock.off('error', onError);
      resolve(sock);
    });
  });
}
