/**
 * `virtkit run DEF`: run a guest in the foreground, without a daemon, its serial console on
 * this terminal. Ctrl-] (or SIGINT/SIGTERM) stops the guest cleanly: ACPI power button, then
 * by force after the definition's shutdown_timeout; a second request forces at once.
 * `--until-ready` is a smoke test: boot, wait for the guest kit's ready marker, stop cleanly.
 * Exit statuses: see RunExit below and docs/qemu-driver.md.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import type { Socket } from 'node:net';
import type { Command } from 'commander';
import { loadDefinition, type DomainDefinition, type LifecycleAction } from '../../conf/index.js';
import { prepareGuestBoot } from '../../guestfs/boot/index.js';
import {
  DEFAULT_QEMU_BINARY, QemuProcess, lifecycleActions, openConsole, probeCapabilities, resolveAccel, watchConsoleFor,
  type Accel, type ExitInfo,
} from '../../qemu/index.js';
import { VirtkitError } from '../../util/errors.js';

/** Exit statuses of `virtkit run` once the guest has started. */
export const RunExit = {
  /**
   * The guest powered off cleanly: by itself, or on our ACPI request (Ctrl-], a signal,
   * --until-ready); also a guest kept after its power-off or reboot (preserve) that we then ended.
   */
  clean: 0,
  /** The guest was stopped by force: it ignored the power button for shutdown_timeout, or QEMU was stopped from outside (quit, SIGTERM). */
  forced: 1,
  /** The guest panicked, or QEMU went away without a SHUTDOWN event (crashed, SIGKILL). */
  crashed: 6,
  /** --until-ready: the ready marker did not come in time. */
  notReady: 7,
} as const;

export const READY_MARKER = 'virtkit-guest: ready';
/** Ctrl-]: the escape character telnet, virsh console and QEMU's -nographic made familiar. */
const ESCAPE_BYTE = 0x1d;

interface RunOptions {
  untilReady?: boolean;
  timeout: string;
}

export function register(program: Command): void {
  program
    .command('run')
    .description('run a guest in the foreground with its serial console on this terminal (no daemon)')
    .argument('<definition>', 'definition file (YAML or JSON)')
    .option('--until-ready', `boot, wait for "${READY_MARKER}" on the console, stop the guest cleanly, exit 0`)
    .option('--timeout <seconds>', 'with --until-ready: how long to wait for the ready marker', '120')
    .addHelpText('after', `
Ctrl-] stops the guest cleanly (ACPI power button, forced after shutdown_timeout); so do SIGINT and SIGTERM.
Exit status: 0 clean power-off, 1 stopped by force (or stopped before ready), 3 no such definition or QEMU,
5 bad definition or arguments, 6 guest panicked or QEMU crashed, 7 not ready in time.

Examples:
  virtkit guestkit ./g && virtkit run ./g/guest.yaml
  virtkit run ./g/guest.yaml --until-ready --timeout 60`)
    .action(async (path: string, opts: RunOptions) => {
      process.exitCode = await runGuest(path, opts);
    });
}

async function runGuest(path: string, opts: RunOptions): Promise<number> {
  const timeoutS = Number(opts.timeout);
  if (!Number.isFinite(timeoutS) || timeoutS <= 0) {
    throw new VirtkitError('argument.invalid', `--timeout: must be a positive number of seconds, got "${opts.timeout}"`);
  }
  const def = await loadDefinition(path);
  const { binary, accel, reason } = await chooseAccel(def);
  note(`starting ${def.name} (accel ${accel}: ${reason})`);
  const runDir = await makeRunDir(def.name);
  try {
    // boot.loader guest: the kernel and initrd come out of the guest's own disk first.
    const bootFiles = def.boot.loader === 'guest' ? await prepareGuestBoot(def, runDir) : undefined;
    const proc = await QemuProcess.launch({ def, ctx: { binary, accel, runDir, ...(bootFiles === undefined ? {} : { bootFiles }) }, paused: true });
    let console: Socket;
    try {
      console = await openConsole(runDir);
    } catch (err) {
      await proc.destroy();
      throw err;
    }
    console.on('data', (chunk: Buffer) => process.stdout.write(chunk));
    console.on('error', () => undefined); // QEMU going away is reported through proc.exited
    await proc.resume();
    const stopper = new GuestStopper(proc, def.shutdown_timeout * 1000);
    const offSignals = onStopSignals(() => stopper.request());
    // Nobody left to show the console to (`virtkit run ... | head`): stop the guest, once.
    const onStdoutError = (): void => { if (!stopper.isRequested) stopper.request(); };
    process.stdout.on('error', onStdoutError);
    const offLifecycle = followLifecycle(proc, def, stopper);
    try {
      return opts.untilReady
        ? await untilReady(proc, console, stopper, timeoutS)
        : await interactive(proc, console, stopper);
    } finally {
      offLifecycle();
      offSignals();
      process.stdout.off('error', onStdoutError);
      console.destroy();
    }
  } finally {
    await rm(runDir, { recursive: true, force: true });
  }
}

async function untilReady(proc: QemuProcess, console: Socket, stopper: GuestStopper, timeoutS: number): Promise<number> {
  const ready = watchConsoleFor(console, READY_MARKER);
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    ready.found.then(() => 'ready' as const),
    proc.exited.then(() => 'exited' as const),
    stopper.requested.then(() => 'interrupted' as const),
    new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), timeoutS * 1000))),
  ]);
  clearTimeout(timer);
  ready.dispose();
  if (outcome === 'timeout') {
    note(`no "${READY_MARKER}" within ${timeoutS} s; stopping the guest`);
    await proc.destroy();
    return RunExit.notReady;
  }
  if (outcome === 'ready') {
    process.stdout.write('\n');
    note('guest is ready; stopping it');
    stopper.request();
  }
  if (outcome === 'exited') note('guest exited before it was ready');
  const status = exitStatus(await proc.exited);
  return outcome === 'ready' ? status : Math.max(status, RunExit.forced);
}

async function interactive(proc: QemuProcess, console: Socket, stopper: GuestStopper): Promise<number> {
  const stdin = process.stdin;
  const tty = stdin.isTTY === true;
  if (tty) stdin.setRawMode(true);
  note(tty ? 'console attached; Ctrl-] stops the guest' : 'console attached; SIGINT or SIGTERM stops the guest');
  const onInput = (chunk: Buffer): void => {
    const { forward, escape } = splitConsoleInput(chunk, tty);
    if (forward.length > 0) console.write(forward);
    if (escape) stopper.request();
  };
  stdin.on('data', onInput);
  stdin.resume();
  try {
    return exitStatus(await proc.exited);
  } finally {
    stdin.off('data', onInput);
    if (tty) stdin.setRawMode(false);
    stdin.pause();
  }
}

/**
 * What of a chunk typed on our stdin goes to the guest: on a terminal, everything before a
 * Ctrl-] (which asks to stop the guest; the rest of the chunk is dropped). Piped input is
 * passed through untouched, Ctrl-] included.
 */
export function splitConsoleInput(chunk: Buffer, tty: boolean): { forward: Buffer; escape: boolean } {
  const at = tty ? chunk.indexOf(ESCAPE_BYTE) : -1;
  return at < 0 ? { forward: chunk, escape: false } : { forward: chunk.subarray(0, at), escape: true };
}

/**
 * This command is the guest's manager, so it carries out on_poweroff / on_reboot / on_crash
 * when the guest stops itself (QEMU keeps it stopped for every answer but a plain destroy,
 * see qemu/command/lifecycle.ts): restart resets and resumes it, preserve leaves it stopped
 * until Ctrl-] or a signal, destroy ends QEMU. Once a stop was requested, nothing restarts.
 */
function followLifecycle(proc: QemuProcess, def: DomainDefinition, stopper: GuestStopper): () => void {
  const qemuExitsOnPoweroff = lifecycleActions(def).shutdown === 'poweroff';
  const act = (action: LifecycleAction, what: string, qemuExits: boolean): void => {
    if (stopper.isRequested) return;
    if (action === 'restart') {
      note(`guest ${what}; restarting it (${settingOf(what)}: restart)`);
      proc.restartGuest().catch((err: unknown) => note(`restart failed: ${String(err)}`));
    } else if (action === 'preserve') {
      note(`guest ${what}; kept stopped (${settingOf(what)}: preserve); Ctrl-] or a signal ends it`);
    } else if (!qemuExits) {
      proc.destroy().catch((err: unknown) => note(`stop failed: ${String(err)}`));
    }
  };
  return proc.qmp.on((ev) => {
    if (ev.event === 'SHUTDOWN' && ev.data['guest'] === true) {
      const reason = ev.data['reason'];
      if (reason === 'guest-shutdown') act(def.on_poweroff, 'powered off', qemuExitsOnPoweroff);
      else if (reason === 'guest-reset') act(def.on_reboot, 'rebooted', qemuExitsOnPoweroff);
    } else if (ev.event === 'GUEST_PANICKED' && ev.data['action'] === 'pause') {
      act(def.on_crash, 'panicked', false);
    }
  });
}

function settingOf(what: string): string {
  return what === 'powered off' ? 'on_poweroff' : what === 'rebooted' ? 'on_reboot' : 'on_crash';
}

/** Stops the guest once: cleanly with the timeout; a second request forces immediately. */
class GuestStopper {
  private requests = 0;
  private signalRequested!: () => void;
  readonly requested = new Promise<void>((r) => (this.signalRequested = r));

  constructor(private readonly proc: QemuProcess, private readonly timeoutMs: number) {}

  get isRequested(): boolean {
    return this.requests > 0;
  }

  request(): void {
    this.requests++;
    this.signalRequested();
    if (this.requests === 1) {
      note(`stopping the guest (ACPI power button; forced after ${this.timeoutMs / 1000} s)`);
      // preserve: false: stopping ends the run and its run dir, so a guest kept after its
      // power-off (on_poweroff: preserve) would have nobody left to look at it.
      this.proc.shutdown({ timeoutMs: this.timeoutMs, preserve: false }).catch((err: unknown) => note(`clean stop failed: ${String(err)}`));
    } else if (this.requests === 2) {
      note('stopping the guest by force');
      this.proc.destroy().catch((err: unknown) => note(`forced stop failed: ${String(err)}`));
    }
  }
}

function exitStatus(exit: ExitInfo): number {
  switch (exit.reason) {
    case 'shutdown':
      note(`guest powered off${exit.guestInitiated ? '' : ' cleanly'}`);
      return RunExit.clean;
    case 'destroyed':
      note(exit.forcedBy ? `guest stopped by force (${exit.forcedBy})` : `QEMU was stopped from outside (${exit.shutdownReason ?? 'killed'})`);
      return RunExit.forced;
    case 'crashed':
      note(`QEMU crashed or the guest panicked${exit.signal ? ` (${exit.signal})` : exit.exitCode != null ? ` (exit status ${exit.exitCode})` : ''}`);
      return RunExit.crashed;
  }
}

async function chooseAccel(def: DomainDefinition): Promise<{ binary: string; accel: Accel; reason: string }> {
  if (def.accel !== 'auto') return { binary: DEFAULT_QEMU_BINARY, accel: def.accel, reason: `${def.accel} requested` };
  const caps = await probeCapabilities();
  return { binary: caps.binary, ...resolveAccel('auto', caps) };
}

/** $XDG_RUNTIME_DIR/virtkit/run/<name>-XXXXXX when there is one, else a temp dir. */
async function makeRunDir(name: string): Promise<string> {
  const xdg = process.env['XDG_RUNTIME_DIR'];
  const parent = xdg && isAbsolute(xdg) ? join(xdg, 'virtkit', 'run') : tmpdir();
  await mkdir(parent, { recursive: true, mode: 0o700 });
  return mkdtemp(join(parent, `virtkit-run-${name.slice(0, 32)}-`));
}

function onStopSignals(fn: () => void): () => void {
  const handler = (): void => fn();
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}

function note(message: string): void {
  process.stderr.write(`\r\nvirtkit: ${message}\r\n`);
}
