/**
 * The in-process fake of the domain driver: no processes, no sockets. A guest is an object
 * with the state machine of a QEMU running a guest kit guest, emitting the same typed
 * lifecycle events as the QEMU driver, with the same ExitInfo classification and the same
 * on_poweroff / on_reboot / on_crash handling (restart, preserve, destroy). Manager and API
 * tests run against it in milliseconds; test/scenarios/ runs the same scenarios on both drivers
 * so the two cannot drift apart.
 *
 * Fake guests live in a FakeHost that outlives one driver (and one manager), keyed by run dir,
 * as QEMU processes outlive a daemon: a second driver over the same host adopts them with
 * attach(). Tests drive a guest from outside through FakeGuest: the guest powers off, reboots
 * or panics by itself, QEMU dies, a raw monitor `stop`, console output.
 *
 * The guest's console runs a tiny shell, as the guest kit guest does: it prints the ready
 * marker when it boots, `poweroff [-f]` and `reboot [-f]` do what they say, `echo` echoes.
 */
import { resolveFsDrivers } from '../command/index.js';
import { OvmfDefaults, VarsFileName } from '../firmware/index.js';
import type { Screenshot } from '../screens/index.js';
import type { DomainCapabilities } from './domcaps.js';
import {
  FakeDomainCapabilities, fakeResourceLimits, fakeScreenshot, fakeSendKeys, fakeVncPassword, fakeWithLimits,
} from './fake-host-resources.js';
import { assertMigratable, checkFilesystemSources, diskAndNicIds, type ResourceLimits, type ResourceLimitsInfo } from './host-resources.js';
import { appendFileSync, existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Duplex } from 'node:stream';
import type { DiskDefinition, DomainDefinition, NicDefinition } from '../../conf/index.js';
import { VirtkitError } from '../../util/errors.js';
import { buildCommand } from '../command/index.js';
import { lifecycleActions } from '../command/lifecycle.js';
import { FakeHotplug } from './fake-hotplug.js';
import type { Accel } from '../caps.js';
import { fakeDump, fakeRestore, fakeSave, fakeSnapshotTags } from './fake-guest-state.js';
import type { DumpFormat, ProgressListener, StreamFile } from './guest-state.js';
import { FakeObservedState } from './trace-fake.js';
import type {
  DeviceInfo, DomainDriver, ExitInfo, ForcedBy, GuestHandle, GuestRunState, HostCapabilities, LaunchOptions, LifecycleEvent,
  LifecycleListener, PolicyAction, PreparedLaunch, PrepareOptions, StopOptions,
} from './types.js';
import type { DetachOptions, MemoryStats, VcpuInfo } from './types.js';

/** What a guest kit guest prints once it listens (see guestkit/init-script.ts). */
export const FakeReadyMarker = 'virtkit-guest: ready';

/**
 * How long a fake guest takes from (re)boot to its ready marker. Not zero: a real guest prints
 * nothing for a while after QEMU starts, and the manager attaches its console meanwhile.
 */
export const FakeBootMs = 10;

/** Run states as QEMU's query-status names them. */
type FakeRunState = 'prelaunch' | 'running' | 'paused' | 'shutdown' | 'guest-panicked';

/** A host's fake QEMU processes, by run dir. One per test (or shared), passed to every driver that should see them. */
export class FakeHost {
  private readonly guests = new Map<string, FakeGuest>();
  /** Fake pids start above the kernel's pid_max (2^22), so they never name a real process. */
  private nextPid = 5_000_000;

  /** The fake QEMU of a run dir, while it lives. */
  guestAt(runDir: string): FakeGuest | undefined {
    return this.guests.get(resolve(runDir));
  }

  /** The live fake QEMU running the domain `name`. */
  guestNamed(name: string): FakeGuest | undefined {
    return [...this.guests.values()].find((g) => g.definition.name === name);
  }

  liveGuests(): FakeGuest[] {
    return [...this.guests.values()];
  }

  /** Every domain named here gets a guest that ignores the ACPI power button (the no-ACPI guest kit guest). */
  readonly ignorePowerButton = new Set<string>();

  /** The daemon holding the handles died (kill -9): its monitor connections are gone, the guests run on. */
  dropAllHandles(): void {
    for (const g of this.guests.values()) g.dropAllHandles();
  }

  /** @internal for FakeDomainDriver */
  spawn(prepared: PreparedLaunch, paused: boolean): FakeGuest {
    const runDir = resolve(prepared.runDir);
    const owner = this.guests.get(runDir);
    if (owner) {
      throw new VirtkitError('domain.invalid-state', `a QEMU (pid ${owner.pid}) is already running in ${runDir}`, { runDir, pid: owner.pid });
    }
    const guest = new FakeGuest(this.nextPid++, runDir, prepared.definition, prepared.accel, () => this.guests.delete(runDir));
    this.guests.set(runDir, guest);
    guest.ignoresPowerButton = this.ignorePowerButton.has(prepared.definition.name);
    guest.start(paused);
    return guest;
  }
}

/** The host every FakeDomainDriver uses unless given its own. */
export const sharedFakeHost = new FakeHost();

interface ConsoleEnd {
  client: Duplex;
}

/** One fake QEMU process and the guest inside it. */
export class FakeGuest {
  /** The guest's OS ignores the ACPI power button (as the no-ACPI guest kit guest does). */
  ignoresPowerButton = false;
  /** Everything typed on the console, for tests. */
  typed = '';
  readonly exited: Promise<ExitInfo>;
  private resolveExit: (exit: ExitInfo) => void = () => undefined;
  private runState: FakeRunState = 'prelaunch';
  private exitInfo: ExitInfo | undefined;
  private readonly handles = new Set<FakeGuestHandle>();
  private readonly consoles = new Set<ConsoleEnd>();
  private inputLine = '';
  private pendingLines: string[] = [];
  /** QEMU's last SHUTDOWN: whether the guest did it, and why. */
  private shutdownEvent: { guest: boolean; reason: string } | undefined;
  private panicked = false;
  /** The host pressed the power button (stop()). */
  private powerdownRequested = false;
  /** A press the guest did not hear yet (paused, or not listening). */
  private buttonPending = false;
  /** A host operation (stop, reboot) owns what happens after the guest powers off: no policy. */
  private hostOwnsPowerOff = false;
  private rebooting = false;
  private forcedBy: ForcedBy | undefined;
  private destroying = false;
  private poweredOffWaiters: (() => void)[] = [];
  private monitorLost = false;
  /** Trace events, capture filters and block counters (trace-fake.ts). */
  readonly observed: FakeObservedState;

  constructor(
    readonly pid: number,
    readonly runDir: string,
    private def: DomainDefinition,
    readonly accel: Accel,
    private readonly onGone: () => void,
  ) {
    this.exited = new Promise((r) => { this.resolveExit = r; });
    this.started = def;
    this.observed = new FakeObservedState(runDir, () => this.def, pid);
    this.hotplug = new FakeHotplug({ get: () => this.def, set: (def) => { this.def = def; } }, pid);
  }

  /** Hot-plug, balloon and vCPUs, with their test hooks (fake-hotplug.ts). */
  readonly hotplug: FakeHotplug;

  get definition(): DomainDefinition { return this.def; }
  /** The definition it was started with (a save refuses hot-plug changes since: assertMigratable). */
  readonly started: DomainDefinition;
  /** What the guest holds in RAM: saved and restored with it, taken and reverted by memory snapshots (fake-guest-state.ts). */
  readonly memory = new Map<string, string>();
  /** @internal the live definition after an external snapshot */
  replaceDefinition(def: DomainDefinition): void { this.def = def; }
  get consoleLogPath(): string { return join(this.runDir, 'console.log'); }
  get isGone(): boolean { return this.exitInfo !== undefined; }
  get state(): FakeRunState { return this.runState; }

  // ---- test hooks: what the guest or the host's outside world does -------------------------

  /** The guest runs `poweroff -f`: what follows is the definition's on_poweroff. */
  powerOff(): void {
    this.requireRunning('power off');
    this.guestStopsItself('poweroff');
  }

  /** The guest runs `reboot -f`: QEMU resets it (on_reboot: restart) or the policy acts. */
  reboot(): void {
    this.requireRunning('reboot');
    if (lifecycleActions(this.def).reboot === 'reset') {
      this.emit({ type: 'reset', by: 'guest' });
      this.boot();
      return;
    }
    this.guestStopsItself('reboot');
  }

  /** The guest kernel panics (pvpanic): what follows is the definition's on_crash. */
  panic(): void {
    this.requireRunning('panic');
    this.panicked = true;
    this.runState = 'guest-panicked';
    const action = this.def.on_crash;
    // panic=exit-failure: QEMU reports the panic as its SHUTDOWN reason, then exits
    if (action === 'destroy') this.shutdownEvent = { guest: true, reason: 'guest-panic' };
    this.emit({ type: 'crashed', action });
    if (this.hostOwnsPowerOff) return;
    this.applyPolicy('crash', action);
  }

  /** QEMU dies unexpectedly (killed from outside, or it crashed itself). */
  die(signal: NodeJS.Signals = 'SIGKILL'): void {
    this.exit({ signal });
  }

  /** A raw monitor `stop` nobody asked the driver for. */
  monitorStop(): void {
    if (this.runState !== 'running') return;
    this.runState = 'paused';
    this.emit({ type: 'paused', by: 'monitor' });
  }

  /** A raw monitor `cont`. */
  monitorCont(): void {
    this.requireNoReset();
    if (this.runState !== 'paused' && this.runState !== 'prelaunch') return;
    this.setRunning();
    this.emit({ type: 'resumed', by: 'monitor' });
  }

  /**
   * The driver's QMP connection is lost while QEMU lives (the QEMU driver reconnects by itself):
   * `monitor-lost`, and monitor calls through a handle fail with qmp.disconnected until
   * restoreMonitor(). Stopping and destroying still work (the QEMU driver falls back to signals).
   */
  loseMonitor(): void {
    this.requireAlive();
    this.monitorLost = true;
    this.emit({ type: 'monitor-lost' });
  }

  /** The QEMU driver reconnected: `monitor-restored`. */
  restoreMonitor(): void {
    this.requireAlive();
    this.monitorLost = false;
    this.emit({ type: 'monitor-restored' });
  }

  /** @internal true between loseMonitor() and restoreMonitor() */
  get isMonitorLost(): boolean { return this.monitorLost; }

  /** Output of the guest on its serial console. */
  print(text: string): void {
    const data = Buffer.from(text);
    appendFileSync(this.consoleLogPath, data);
    for (const c of this.consoles) c.client.push(data);
  }

  // ---- driver side ---------------------------------------------------------------------------

  /** @internal */
  start(paused: boolean): void {
    this.runState = 'prelaunch';
    if (!paused) this.setRunning();
    setImmediate(() => this.emit({ type: 'started', paused }));
  }

  /** @internal */
  attachHandle(): FakeGuestHandle {
    // One monitor client at a time, as QEMU serves QMP: a new manager's attach means the old
    // one is gone (a daemon killed by SIGKILL never detached).
    for (const h of this.handles) h.detach();
    const handle = new FakeGuestHandle(this);
    this.handles.add(handle);
    return handle;
  }

  /** @internal */
  dropAllHandles(): void {
    for (const h of [...this.handles]) h.detach();
  }

  /** @internal */
  dropHandle(handle: FakeGuestHandle): void {
    this.handles.delete(handle);
  }

  /** @internal */
  runStateForQuery(): FakeRunState { return this.runState; }

  /** @internal */
  pause(): void {
    this.requireAlive();
    if (this.runState !== 'running') return;
    this.runState = 'paused';
    this.emit({ type: 'paused', by: 'host' });
  }

  /** @internal */
  resume(): void {
    this.requireAlive();
    this.requireNoReset();
    if (this.runState !== 'paused' && this.runState !== 'prelaunch') return;
    this.setRunning();
    this.emit({ type: 'resumed', by: 'host' });
  }

  /** @internal the reset button */
  reset(): void {
    this.requireAlive();
    this.emit({ type: 'reset', by: 'host' });
    if (this.runState === 'running') this.boot();
    else if (this.runState === 'shutdown' || this.runState === 'guest-panicked') {
      // QEMU leaves a stopped guest it reset in prelaunch: `cont` boots it again
      this.shutdownEvent = undefined;
      this.panicked = false;
      this.runState = 'prelaunch';
    }
  }

  /** @internal ACPI power-off, then reset and resume in the same QEMU. */
  async cleanReboot(timeoutMs: number): Promise<void> {
    this.requireAlive();
    this.hostOwnsPowerOff = true;
    this.rebooting = true;
    try {
      this.pressPowerButton();
      const down = await this.waitPoweredOff(timeoutMs);
      if (!down) throw new VirtkitError('operation.timeout', `guest did not power off for the reboot within ${timeoutMs} ms`, { timeoutMs });
      if (this.exitInfo) throw new VirtkitError('qmp.disconnected', 'QEMU exited during the reboot', { runDir: this.runDir });
      this.restartInPlace();
      this.emit({ type: 'reset', by: 'host' });
    } finally {
      this.hostOwnsPowerOff = false;
      this.rebooting = false;
      this.buttonPending = false;
    }
  }

  /** @internal ACPI power button, forced after the timeout. */
  async stop(opts: StopOptions): Promise<'clean' | 'forced'> {
    if (this.exitInfo) return this.forcedBy ? 'forced' : 'clean';
    const preserve = opts.preserve ?? this.def.on_poweroff === 'preserve';
    this.hostOwnsPowerOff = true;
    try {
      if (this.runState === 'guest-panicked') {
        // a panicked guest hears no power button
        this.forceStop();
        return 'forced';
      }
      if (this.runState !== 'shutdown') {
        this.powerdownRequested = true;
        this.pressPowerButton();
        await this.waitPoweredOff(opts.timeoutMs);
        if (this.exitInfo) return this.forcedBy ? 'forced' : 'clean';
        if (!this.isPoweredOff()) {
          this.forceStop();
          return 'forced';
        }
      }
      // Powered off and kept by QEMU: left there (preserve) or ended.
      if (!preserve) this.endKeptGuest();
      return 'clean';
    } finally {
      this.hostOwnsPowerOff = false;
    }
  }

  /** @internal */
  destroy(): ExitInfo {
    if (!this.exitInfo) this.forceStop();
    return this.exitInfo!;
  }

  /** @internal */
  monitor(command: { qmp: { execute: string; arguments?: Record<string, unknown> } } | { hmp: string }): unknown {
    this.requireAlive();
    if ('hmp' in command) return this.hmp(command.hmp.trim());
    const { execute } = command.qmp;
    switch (execute) {
      case 'query-status':
        return { status: this.runState, singlestep: false, running: this.runState === 'running' };
      case 'query-name':
        return { name: this.def.name };
      case 'stop':
        this.monitorStop();
        return {};
      case 'cont':
        this.monitorCont();
        return {};
      case 'system_reset':
        this.reset();
        return {};
      case 'system_powerdown':
        this.pressPowerButton();
        return {};
      case 'quit':
        this.shutdownEvent ??= { guest: false, reason: 'host-qmp-quit' };
        setImmediate(() => this.exit({}));
        return {};
      default: {
        const observed = this.observed.command(execute, command.qmp.arguments ?? {});
        if (observed !== undefined) return observed;
        throw new VirtkitError('qmp.command-failed', `The command ${execute} has not been found`, { command: execute, class: 'CommandNotFound' });
      }
    }
  }

  /** @internal */
  openConsole(): Duplex {
    this.requireAlive();
    const end: ConsoleEnd = {
      client: new Duplex({
        read() { /* output is pushed as the guest prints */ },
        write: (chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void) => { this.input(chunk.toString('utf8')); cb(); },
        final: (cb: (err?: Error | null) => void) => { this.consoles.delete(end); cb(); },
      }),
    };
    end.client.on('close', () => this.consoles.delete(end));
    this.consoles.add(end);
    return end.client;
  }

  // ---- the state machine ---------------------------------------------------------------------

  /** (A method, so the compiler does not narrow the state across an await.) */
  private isPoweredOff(): boolean {
    return this.runState === 'shutdown';
  }

  private hmp(line: string): string {
    const [cmd, ...args] = line.split(/\s+/);
    // HMP answers are text lines ending in CRLF, as QEMU's are
    if (cmd === 'info' && args[0] === 'name') return `${this.def.name}\r\n`;
    if (cmd === 'info' && args[0] === 'status') return `VM status: ${this.runState === 'running' ? 'running' : 'paused'}\r\n`;
    if (cmd === 'stop') { this.monitorStop(); return ''; }
    if (cmd === 'cont' || cmd === 'c') { this.monitorCont(); return ''; }
    throw new VirtkitError('qmp.command-failed', `unknown command: '${cmd ?? ''}'`, { hmp: line });
  }

  private requireAlive(): void {
    if (this.exitInfo) throw new VirtkitError('qmp.disconnected', `QEMU of ${this.runDir} has exited`, { runDir: this.runDir });
  }

  /** QEMU refuses `cont` for a guest that powered off or panicked: it has to be reset first. */
  private requireNoReset(): void {
    if (this.runState === 'shutdown' || this.runState === 'guest-panicked') {
      throw new VirtkitError('qmp.command-failed', 'Resetting the Virtual Machine is required', { command: 'cont' });
    }
  }

  private requireRunning(what: string): void {
    this.requireAlive();
    if (this.runState !== 'running') throw new Error(`a ${this.runState} guest cannot ${what}`);
  }

  private setRunning(): void {
    const booting = this.runState === 'prelaunch';
    this.runState = 'running';
    if (booting) this.boot();
    if (this.buttonPending && !this.ignoresPowerButton) this.pressPowerButton();
    const lines = this.pendingLines;
    this.pendingLines = [];
    for (const l of lines) this.runLine(l);
  }

  /** The guest (re)boots: it prints its ready marker once it listens. */
  private boot(): void {
    setTimeout(() => { if (!this.exitInfo && this.runState === 'running') this.print(`${FakeReadyMarker}\n`); }, FakeBootMs);
  }

  private emit(ev: LifecycleEvent): void {
    for (const h of this.handles) h.deliver(ev);
  }

  private pressPowerButton(): void {
    if (this.runState !== 'running' || this.ignoresPowerButton) {
      this.buttonPending = true;
      return;
    }
    this.buttonPending = false;
    setImmediate(() => {
      if (!this.exitInfo && this.runState === 'running') this.guestStopsItself('poweroff');
    });
  }

  /** Resolves true once the guest powered off (or QEMU is gone), false after `timeoutMs`. */
  private waitPoweredOff(timeoutMs: number): Promise<boolean> {
    if (this.runState === 'shutdown' || this.exitInfo) return Promise.resolve(true);
    return new Promise((resolveWait) => {
      const done = (v: boolean): void => {
        clearTimeout(timer);
        this.poweredOffWaiters = this.poweredOffWaiters.filter((w) => w !== onDown);
        resolveWait(v);
      };
      const onDown = (): void => done(true);
      const timer = setTimeout(() => done(false), timeoutMs);
      this.poweredOffWaiters.push(onDown);
    });
  }

  /** The guest powered off (`poweroff`) or asked for a reboot QEMU turns into a shutdown (`-action reboot=shutdown`). */
  private guestStopsItself(what: 'poweroff' | 'reboot'): void {
    if (this.exitInfo) return;
    const reason = what === 'poweroff' ? 'guest-shutdown' : 'guest-reset';
    this.shutdownEvent = { guest: true, reason };
    // a clean reboot's power-off is part of the reboot, not news
    if (!this.rebooting) this.emit({ type: 'shutdown', by: this.hostOwnsPowerOff ? 'host' : 'guest', reason });
    const qemuExits = lifecycleActions(this.def).shutdown === 'poweroff';
    if (this.hostOwnsPowerOff) {
      // stop() or reboot() decides; QEMU keeps the guest unless its own action is to exit
      // (and a reboot sets `shutdown=pause` for its duration).
      this.runState = 'shutdown';
      this.wakePoweredOff();
      if (qemuExits && this.powerdownRequested) this.exit({ code: 0 });
      return;
    }
    this.runState = 'shutdown';
    this.wakePoweredOff();
    this.applyPolicy(what, what === 'poweroff' ? this.def.on_poweroff : this.def.on_reboot);
  }

  private wakePoweredOff(): void {
    const waiters = this.poweredOffWaiters;
    this.poweredOffWaiters = [];
    for (const w of waiters) w();
  }

  /** on_poweroff / on_reboot / on_crash, carried out as the QEMU driver does (events.ts): the policy event first, then its effect. */
  private applyPolicy(what: 'poweroff' | 'reboot' | 'crash', action: PolicyAction): void {
    this.emit({ type: 'policy', what, action });
    if (action === 'restart') {
      this.restartInPlace();
      this.emit({ type: 'reset', by: 'host' });
    } else if (action === 'preserve') {
      this.emit({ type: 'paused', by: 'policy', reason: `${what}-preserve` });
    } else {
      // QEMU exits by itself (-action shutdown=poweroff, panic=exit-failure) or is told to quit.
      this.exit(what === 'crash' ? { code: 1 } : { code: 0 });
    }
  }

  /** system_reset + cont of a guest that stopped itself: it boots again. */
  private restartInPlace(): void {
    this.shutdownEvent = undefined;
    this.panicked = false;
    this.runState = 'running';
    this.boot();
  }

  private endKeptGuest(): void {
    this.shutdownEvent ??= { guest: false, reason: 'host-qmp-quit' };
    this.exit({ code: 0 });
  }

  private forceStop(): void {
    this.destroying = true;
    this.forcedBy = 'quit';
    if (!this.shutdownEvent) this.shutdownEvent = { guest: false, reason: 'host-qmp-quit' };
    this.exit({ code: 0 });
  }

  /** QEMU is gone: classify as QemuProcess does, tell every handle, leave the host. */
  private exit(status: { code?: number | null; signal?: NodeJS.Signals | null }): void {
    if (this.exitInfo) return;
    const ev = this.shutdownEvent;
    const base: Omit<ExitInfo, 'reason' | 'guestInitiated'> = {
      ...(ev ? { shutdownReason: ev.reason } : {}),
      ...(this.forcedBy ? { forcedBy: this.forcedBy } : {}),
      exitCode: status.code ?? null,
      signal: status.signal ?? null,
    };
    let exit: ExitInfo;
    if (this.panicked) exit = { reason: 'crashed', guestInitiated: true, ...base };
    else if (ev?.guest) exit = { reason: 'shutdown', guestInitiated: !this.powerdownRequested, ...base };
    else if (this.destroying || ev) exit = { reason: 'destroyed', guestInitiated: false, ...base };
    else exit = { reason: 'crashed', guestInitiated: false, ...base };
    this.exitInfo = exit;
    this.onGone();
    this.wakePoweredOff();
    for (const c of this.consoles) {
      c.client.push(null);
      c.client.destroy();
    }
    this.consoles.clear();
    this.emit({ type: 'exited', exit });
    for (const h of this.handles) h.settle(exit);
    this.resolveExit(exit);
  }

  private input(text: string): void {
    this.typed += text;
    for (const ch of text) {
      if (ch === '\n' || ch === '\r') {
        const line = this.inputLine.trim();
        this.inputLine = '';
        if (line === '') continue;
        // a stopped guest reads its input once it runs again
        if (this.runState === 'running') this.runLine(line);
        else this.pendingLines.push(line);
      } else {
        this.inputLine += ch;
      }
    }
  }

  /** The guest's shell. */
  private runLine(line: string): void {
    this.print(`${line}\n`);
    const [cmd, ...args] = line.split(/\s+/);
    setImmediate(() => {
      if (this.exitInfo || this.runState !== 'running') return;
      if (cmd === 'poweroff') this.guestStopsItself('poweroff');
      else if (cmd === 'reboot') this.reboot();
      else if (cmd === 'echo') this.print(`${args.join(' ')}\n`);
      else this.print(`sh: ${cmd ?? ''}: not found\n`);
    });
  }
}

/** A handle on a fake guest: what the manager holds. */
export class FakeGuestHandle implements GuestHandle {
  readonly exited: Promise<ExitInfo>;
  private resolveExit: (exit: ExitInfo) => void = () => undefined;
  private readonly listeners = new Set<LifecycleListener>();
  private held: LifecycleEvent[] | undefined = [];
  private detached = false;

  constructor(private readonly guest: FakeGuest) {
    this.exited = new Promise((r) => { this.resolveExit = r; });
  }

  get pid(): number { return this.guest.pid; }
  get runDir(): string { return this.guest.runDir; }
  get accel(): Accel { return this.guest.accel; }
  get consoleLogPath(): string { return this.guest.consoleLogPath; }

  onEvent(fn: LifecycleListener): () => void {
    this.listeners.add(fn);
    const held = this.held;
    this.held = undefined;
    for (const ev of held ?? []) fn(ev);
    return () => { this.listeners.delete(fn); };
  }

  /** @internal */
  deliver(ev: LifecycleEvent): void {
    if (this.detached) return;
    // as the QEMU driver does: what happens before anyone subscribed goes to the first subscriber
    if (this.held) {
      this.held.push(ev);
      return;
    }
    for (const fn of [...this.listeners]) fn(ev);
  }

  /** @internal */
  settle(exit: ExitInfo): void {
    if (!this.detached) this.resolveExit(exit);
  }

  private use(): FakeGuest {
    if (this.detached) throw new VirtkitError('qmp.disconnected', `this handle on ${this.guest.runDir} was detached`, { runDir: this.guest.runDir });
    return this.guest;
  }

  /** What needs QMP: refused while the monitor is lost (FakeGuest.loseMonitor). */
  private useMonitor(): FakeGuest {
    const guest = this.use();
    if (guest.isMonitorLost) throw new VirtkitError('qmp.disconnected', `the QMP connection to ${guest.runDir} was lost`, { runDir: guest.runDir });
    return guest;
  }

  async state(): Promise<GuestRunState> {
    const s = this.useMonitor().runStateForQuery();
    if (this.guest.isGone) throw new VirtkitError('qmp.disconnected', `QEMU of ${this.guest.runDir} has exited`, { runDir: this.guest.runDir });
    return s === 'guest-panicked' ? 'crashed' : s;
  }

  stop(opts: StopOptions): Promise<'clean' | 'forced'> { return this.use().stop(opts); }

  async destroy(): Promise<ExitInfo> { return this.use().destroy(); }

  async pause(): Promise<void> { this.useMonitor().pause(); }

  async resume(): Promise<void> { this.useMonitor().resume(); }

  async reset(): Promise<void> { this.useMonitor().reset(); }

  async reboot(opts: { timeoutMs?: number } = {}): Promise<void> {
    await this.useMonitor().cleanReboot(opts.timeoutMs ?? 60_000);
  }

  liveDefinition(): DomainDefinition { return this.guest.definition; }

  async devices(): Promise<DeviceInfo[]> {
    const def = this.use().definition;
    return [
      ...def.disks.map((d) => ({ id: d.id, kind: 'disk' as const })),
      ...def.nics.map((n) => ({ id: n.id, kind: 'nic' as const })),
    ];
  }

  async monitor(command: { qmp: { execute: string; arguments?: Record<string, unknown> } } | { hmp: string }): Promise<unknown> {
    return this.useMonitor().monitor(command);
  }

  // ---- hot-plug, memory and CPUs (fake-hotplug.ts)
  async attachDisk(disk: DiskDefinition, hostPath: string): Promise<void> { this.useMonitor().hotplug.attachDisk(disk, hostPath); }
  async detachDisk(id: string, opts: DetachOptions): Promise<void> { this.useMonitor().hotplug.detachDisk(id, opts); }
  async attachNic(nic: NicDefinition): Promise<void> { this.useMonitor().hotplug.attachNic(nic); }
  async detachNic(id: string, opts: DetachOptions): Promise<void> { this.useMonitor().hotplug.detachNic(id, opts); }
  async setMemory(bytes: number): Promise<void> { this.useMonitor().hotplug.setMemory(bytes); }
  async memoryStats(): Promise<MemoryStats> { return this.useMonitor().hotplug.memoryStats(); }
  async setVcpus(count: number, opts: DetachOptions): Promise<void> { this.useMonitor().hotplug.setVcpus(count, opts); }
  async vcpuInfo(): Promise<VcpuInfo[]> { return this.useMonitor().hotplug.vcpuInfo(); }

  async openConsole(): Promise<Duplex> { return this.use().openConsole(); }

  // ---- resource limits, screens and keys (fake-host-resources.ts): no cgroups, a blank screen
  async setResourceLimits(limits: ResourceLimits): Promise<void> { const g = this.useMonitor(); g.replaceDefinition(fakeWithLimits(g.definition, limits)); }
  async resourceLimits(): Promise<ResourceLimitsInfo> { return fakeResourceLimits(this.use().definition); }
  async screenshot(): Promise<Screenshot> { return fakeScreenshot(this.useMonitor().definition); }
  async sendKeys(keys: readonly string[]): Promise<void> { fakeSendKeys(this.useMonitor(), keys); }
  async setVncPassword(): Promise<string> { return fakeVncPassword(this.useMonitor().definition); }

  // ---- save/restore, snapshots, memory dumps (fake-guest-state.ts) ----
  async saveState(file: StreamFile, _onProgress?: ProgressListener): Promise<number> {
    const g = this.useMonitor();
    assertMigratable(g.definition, diskAndNicIds(g.started));
    const bytes = await fakeSave(file, { uuid: g.definition.uuid, memory: Object.fromEntries(g.memory) });
    g.destroy();
    return bytes;
  }

  async internalSnapshot(op: 'save' | 'load' | 'delete', tag: string, _onProgress?: ProgressListener): Promise<void> {
    const g = this.useMonitor();
    const memory = fakeSnapshotTags.apply(g.definition, op, tag, JSON.stringify(Object.fromEntries(g.memory)));
    if (op === 'load' && memory !== undefined) {
      g.memory.clear();
      for (const [k, v] of Object.entries(JSON.parse(memory) as Record<string, string>)) g.memory.set(k, v);
    }
  }

  async externalSnapshot(overlays: readonly { id: string; overlay: string }[], _tag: string, live: DomainDefinition): Promise<void> {
    const g = this.useMonitor();
    for (const o of overlays) {
      if (!g.definition.disks.some((d) => d.id === o.id)) throw new VirtkitError('operation.unsupported', `disk ${o.id} has no block node in QEMU`, { disk: o.id });
      if (!existsSync(o.overlay)) throw new VirtkitError('qmp.command-failed', `Could not open '${o.overlay}': No such file or directory`, { command: 'blockdev-add' });
    }
    g.replaceDefinition(live);
  }

  async dumpMemory(path: string, format: DumpFormat, _onProgress?: ProgressListener): Promise<void> {
    await fakeDump(path, format, this.useMonitor().definition);
  }

  detach(): void {
    if (this.detached) return;
    this.detached = true;
    this.listeners.clear();
    this.guest.dropHandle(this);
  }
}

export interface FakeDriverOptions {
  /** Where the fake QEMU processes live; default sharedFakeHost. */
  host?: FakeHost;
}

export class FakeDomainDriver implements DomainDriver {
  readonly kind = 'fake' as const;
  readonly host: FakeHost;

  constructor(opts: FakeDriverOptions = {}) {
    this.host = opts.host ?? sharedFakeHost;
  }

  async domainCapabilities(): Promise<DomainCapabilities> { return FakeDomainCapabilities; }

  async capabilities(): Promise<HostCapabilities> {
    return { binary: 'qemu-system-x86_64', version: '7.2.0 (fake)', accelerators: ['tcg'], kvm: { usable: false, reason: 'fake driver' } };
  }

  async prepare(def: DomainDefinition, opts: PrepareOptions): Promise<PreparedLaunch> {
    const runDir = resolve(opts.runDir);
    await mkdir(runDir, { recursive: true, mode: 0o700 });
    // The real command line, so the fake refuses what the builder refuses (an unresolved volume...).
    await checkFilesystemSources(def);
    const command = buildCommand(def, {
      binary: 'qemu-system-x86_64', accel: 'tcg', runDir,
      ...(def.firmware === 'uefi' ? { firmware: { code: OvmfDefaults.code, vars: join(opts.stateDir ?? runDir, VarsFileName) } } : {}),
      ...(def.filesystems ? { filesystemDrivers: resolveFsDrivers(def, true) } : {}),
      ...(opts.volumePaths ? { volumePaths: opts.volumePaths } : {}),
      ...(def.boot.loader === 'guest' ? { bootFiles: { kernel: join(runDir, 'boot', 'vmlinuz') } } : {}),
    });
    const accelReason = def.accel === 'kvm' ? 'kvm requested' : 'fake driver: tcg';
    return { definition: def, runDir, accel: def.accel === 'kvm' ? 'kvm' : 'tcg', accelReason, command };
  }

  async launch(prepared: PreparedLaunch, opts: LaunchOptions = {}): Promise<GuestHandle> {
    // What QEMU itself would refuse at start-up: files it cannot open.
    const def = prepared.definition;
    const files = [
      ...(def.boot.loader === 'direct' ? [def.boot.kernel, ...(def.boot.initrd ? [def.boot.initrd] : [])] : []),
      ...def.disks.flatMap((d) => (d.source !== undefined ? [d.source] : [])),
    ];
    for (const f of files) {
      if (!existsSync(f)) {
        const stderr = `qemu-system-x86_64: Could not open '${f}': No such file or directory\n`;
        throw new VirtkitError('qemu.failed-to-start', stderr.trim(), { binary: prepared.command.binary, runDir: prepared.runDir, stderr, exitCode: 1, signal: null });
      }
    }
    const restored = opts.incoming ? await fakeRestore(opts.incoming, def.uuid) : undefined;
    const guest = this.host.spawn(prepared, opts.paused === true);
    for (const [k, v] of Object.entries(restored?.memory ?? {})) guest.memory.set(k, v);
    return guest.attachHandle();
  }

  async attach(def: DomainDefinition, runDir: string): Promise<GuestHandle> {
    const dir = resolve(runDir);
    const guest = this.host.guestAt(dir);
    if (!guest || guest.isGone) throw new VirtkitError('process.stale', `no QEMU runs in ${dir}`, { runDir: dir });
    if (guest.definition.uuid !== def.uuid) {
      throw new VirtkitError('process.stale', `the QEMU of ${dir} is not the one of uuid ${def.uuid}`, { runDir: dir, pid: guest.pid });
    }
    return guest.attachHandle();
  }
}
