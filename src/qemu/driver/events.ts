/**
 * The one place where QMP events become typed lifecycle events, and where on_poweroff /
 * on_reboot / on_crash are carried out. The QEMU guest handle feeds every QMP event in; the
 * tracker emits LifecycleEvents and, when the guest stopped itself and QEMU keeps it, asks the
 * handle's controls to restart it or end QEMU. Pure bookkeeping over an event sequence (the
 * clock is injectable), so the policy table is unit-tested without QEMU.
 *
 * What QEMU does by itself comes from its `-action` settings (RunActions, read from its command
 * line); the definition says what was meant. lifecycleActions() (qemu/command/lifecycle.ts)
 * keeps QEMU stopped for every answer but a plain destroy, so this module acts on:
 * - SHUTDOWN guest-shutdown: the guest powered off (on_poweroff);
 * - SHUTDOWN guest-reset: a guest reboot turned into a shutdown by `reboot=shutdown` (on_reboot);
 * - GUEST_PANICKED (pvpanic), and the SHUTDOWN guest-panic that follows under
 *   `panic=exit-failure` (on_crash).
 * A reboot under `reboot=reset` is QEMU's own doing (on_reboot: restart): a `reset` event only.
 * See docs/qemu-driver.md for the full table.
 */
import type { DomainDefinition, LifecycleAction } from '../../conf/index.js';
import type { QmpEvent } from '../qmp/events.js';
import type { RunActions } from '../process/actions.js';
import type { ExitInfo, LifecycleEvent } from './types.js';

/** The definition's settings this module carries out. */
export type LifecyclePolicy = Pick<DomainDefinition, 'on_poweroff' | 'on_reboot' | 'on_crash'>;

/** What the guest did by itself that a policy answers. */
export type GuestStop = 'poweroff' | 'reboot' | 'crash';

/**
 * Firmware resets the machine a few more times right after a reset (SeaBIOS, entered again,
 * resets once more to get its pristine image back, often as two requests in a row; QEMU
 * reports those as guest-initiated): a guest RESET this soon after the previous RESET of any
 * origin is part of the same reset, not a new reboot. The window slides with each RESET.
 */
export const RESET_QUIET_MS = 5000;

/** How the tracker acts on QEMU: the guest handle's low-level mechanics. */
export interface LifecycleControls {
  /** Reset and resume a guest QEMU keeps stopped (what `restart` asks for). */
  restartGuest(): Promise<void>;
  /** End a QEMU that keeps a guest no longer running: `quit`, by force as a fallback. */
  endKeptGuest(): Promise<void>;
}

export interface LifecycleTrackerOptions {
  policy: LifecyclePolicy;
  /** QEMU's own actions, from its command line. */
  actions: Readonly<RunActions>;
  controls: LifecycleControls;
  emit: (ev: LifecycleEvent) => void;
  /** A policy action that failed (QEMU gone meanwhile, QMP timeout). Default: ignored. */
  onActionError?: (err: unknown, what: GuestStop, action: LifecycleAction) => void;
  /** Milliseconds clock for the reset window. Default Date.now. */
  now?: () => number;
}

/**
 * What the driver does about a guest that stopped itself, given what the definition asks and
 * what QEMU does by itself: `qemu` when QEMU's own action already is the answer (it exits, or
 * the guest keeps running), otherwise the action to carry out. `qemuStopped` says whether QEMU
 * keeps the guest stopped (shutdown=pause, or a panic that paused it).
 */
export function policyStep(action: LifecycleAction, qemuStopped: boolean): 'qemu' | 'restart' | 'preserve' | 'end' {
  if (!qemuStopped) return 'qemu';
  if (action === 'restart') return 'restart';
  if (action === 'preserve') return 'preserve';
  return 'end';
}

export class LifecycleTracker {
  private readonly now: () => number;
  /** Operations of the handle's own in flight (pause, resume, reset, reboot, restart): their STOP/RESUME are not news. */
  private ownOps = 0;
  /** A handle reboot in flight: its power-off is part of it, not a guest power-off. */
  private rebooting = 0;
  private stopRequested = false;
  private destroyRequested = false;
  /** QEMU is about to stop the CPUs itself (a kept power-off, a panic): that STOP is not a monitor pause. */
  private keptStopPending = false;
  /** A panic whose answer waits for the SHUTDOWN guest-panic QEMU sends next (panic=exit-failure). */
  private panicPending = false;
  private lastResetAt = Number.NEGATIVE_INFINITY;
  private ended = false;

  constructor(private readonly opts: LifecycleTrackerOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** From now on the guest is being stopped on request: no policy acts, a power-off is the host's. */
  markStopRequested(): void {
    this.stopRequested = true;
  }

  /** QEMU is being ended on request: nothing acts any more. */
  markDestroyRequested(): void {
    this.stopRequested = true;
    this.destroyRequested = true;
  }

  /** Runs an operation of the handle's own; the STOP and RESUME it causes are not reported as monitor changes. */
  async own<T>(fn: () => Promise<T>): Promise<T> {
    this.ownOps++;
    try {
      return await fn();
    } finally {
      this.ownOps--;
    }
  }

  /** Runs a clean reboot of the handle's: its power-off and resume are part of it. */
  async reboot<T>(fn: () => Promise<T>): Promise<T> {
    this.rebooting++;
    try {
      return await this.own(fn);
    } finally {
      this.rebooting--;
    }
  }

  /** Feeds one QMP event. */
  handle(ev: QmpEvent): void {
    if (this.ended) return;
    const data = ev.data as { guest?: unknown; reason?: unknown; action?: unknown };
    switch (ev.event) {
      case 'RESET':
        this.onReset(data.guest === true);
        break;
      case 'STOP':
        this.onStop();
        break;
      case 'RESUME':
        this.keptStopPending = false;
        if (this.ownOps === 0) this.opts.emit({ type: 'resumed', by: 'monitor' });
        break;
      case 'SHUTDOWN':
        if (data.guest === true) this.onGuestShutdown(typeof data.reason === 'string' ? data.reason : 'guest-shutdown');
        break;
      case 'GUEST_PANICKED':
        this.onPanic(typeof data.action === 'string' ? data.action : 'pause');
        break;
      default:
        break;
    }
  }

  /**
   * QMP was lost while QEMU lives, or found again (QemuProcess reconnects). QMP events of the
   * time between are not replayed: a guest that stopped itself meanwhile is not answered.
   */
  monitor(change: 'lost' | 'restored'): void {
    if (this.ended) return;
    this.opts.emit({ type: change === 'lost' ? 'monitor-lost' : 'monitor-restored' });
  }

  /** QEMU is gone: the last event. */
  exited(exit: ExitInfo): void {
    if (this.ended) return;
    this.ended = true;
    this.opts.emit({ type: 'exited', exit });
  }

  private onReset(guest: boolean): void {
    const now = this.now();
    const quiet = now - this.lastResetAt > RESET_QUIET_MS;
    this.lastResetAt = now;
    this.keptStopPending = false;
    // The host's resets (reset(), reboot(), a restart policy, a monitor system_reset) always
    // count; the guest's only when they are not its firmware's follow-up to the last reset.
    if (!guest) this.opts.emit({ type: 'reset', by: 'host' });
    else if (quiet) this.opts.emit({ type: 'reset', by: 'guest' });
  }

  private onStop(): void {
    if (this.keptStopPending) {
      this.keptStopPending = false;
      return;
    }
    if (this.ownOps === 0 && !this.destroyRequested) this.opts.emit({ type: 'paused', by: 'monitor' });
  }

  private onGuestShutdown(reason: string): void {
    if (reason === 'guest-panic') {
      // The second half of a panic under panic=exit-failure; QEMU exits now unless shutdown=pause keeps it.
      if (this.panicPending) {
        this.panicPending = false;
        this.carryOut('crash', this.opts.actions.shutdown === 'pause');
      }
      return;
    }
    const stopped = this.opts.actions.shutdown === 'pause';
    if (stopped) this.keptStopPending = true;
    if (this.rebooting > 0 && reason === 'guest-shutdown') return; // the handle's own reboot powers the guest off first
    this.opts.emit({ type: 'shutdown', by: this.stopRequested ? 'host' : 'guest', reason });
    if (reason === 'guest-shutdown') this.carryOut('poweroff', stopped);
    else if (reason === 'guest-reset') this.carryOut('reboot', stopped);
  }

  private onPanic(action: string): void {
    const policy = this.opts.policy.on_crash;
    this.opts.emit({ type: 'crashed', action: policy });
    if (action === 'run') return; // panic=none: QEMU lets the guest go on; nothing to answer
    this.keptStopPending = true;
    if (action === 'poweroff') {
      // panic=exit-failure (or shutdown): a SHUTDOWN guest-panic follows, then QEMU exits unless shutdown=pause keeps it
      this.panicPending = true;
      return;
    }
    this.carryOut('crash', true);
  }

  /** Answers a guest stop with the definition's action, unless a stop or destroy was requested. */
  private carryOut(what: GuestStop, qemuStopped: boolean): void {
    if (this.stopRequested) return;
    const action = what === 'poweroff' ? this.opts.policy.on_poweroff : what === 'reboot' ? this.opts.policy.on_reboot : this.opts.policy.on_crash;
    const step = policyStep(action, qemuStopped);
    this.opts.emit({ type: 'policy', what, action });
    const failed = (err: unknown): void => this.opts.onActionError?.(err, what, action);
    switch (step) {
      case 'restart':
        this.own(() => this.opts.controls.restartGuest()).catch(failed);
        break;
      case 'preserve':
        this.opts.emit({ type: 'paused', by: 'policy', reason: `${what}-preserve` });
        break;
      case 'end':
        this.opts.controls.endKeptGuest().catch(failed);
        break;
      case 'qemu':
        break;
    }
  }
}
