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
import type { Duplex } from 'node:stream';
import type { Command } from 'commander';
import { FormatOptionHelp, loadDefinitionAnyFormat } from './definition-input.js';
import { QemuDomainDriver, watchConsoleFor, type ExitInfo, type GuestHandle, type LifecycleEvent } from '../../qemu/index.js';
import { timeoutOption } from '../options.js';
import { mark, markProcessStart } from '../../util/timeline.js';

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
  timeout: number;
  format?: string;
  lenient?: boolean;
}

export function register(program: Command): void {
  program
    .command('run')
    .description('run a guest in the foreground with its serial console on this terminal (no daemon)')
    .argument('<definition>', 'definition file: YAML, JSON, libvirt domain XML or a Xen xm/xl config, told apart by content ("-" reads stdin)')
    .option('--format <format>', FormatOptionHelp)
    .option('--lenient', 'libvirt XML and xm: go on even though some elements cannot be honoured (each is reported on stderr)')
    .option('--until-ready', `boot, wait for "${READY_MARKER}" on the console, stop the guest cleanly, exit 0`)
    .addOption(timeoutOption('with --until-ready: how long to wait for the ready marker').default(120))
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
  markProcessStart();
  mark('cli: run verb entered');
  const timeoutS = opts.timeout;
  // This command is the guest's manager: the driver carries out on_poweroff / on_reboot /
  // on_crash (restart, preserve until Ctrl-] or a signal, destroy); once a stop was asked for,
  // nothing restarts the guest. Here we only say what it did.
  const driver = new QemuDomainDriver({
    onActionError: (err, { action }) => note(`${action === 'restart' ? 'restart' : 'stop'} failed: ${String(err)}`),
  });
  // The capabilities (their cache, the host's KVM verdict) do not depend on the definition: read
  // while it loads. A failure is not kept; prepare() asks again and reports it.
  void driver.qemuCapabilities().catch(() => undefined);
  const def = await loadDefinitionAnyFormat(path, { ...(opts.format === undefined ? {} : { format: opts.format }), ...(opts.lenient === undefined ? {} : { lenient: opts.lenient }) });
  mark('cli: definition loaded');
  const runDir = await makeRunDir(def.name);
  try {
    // accelerator, and for boot.loader guest the kernel and initrd out of the guest's own disk
    const prepared = await driver.prepare(def, { runDir });
    note(`starting ${def.name} (accel ${prepared.accel}: ${prepared.accelReason})`);
    // consoleFirst: QEMU waits for our console connection before it creates the machine, then
    // runs the CPUs by itself: every byte reaches this terminal, and no QMP round trip stands
    // before the guest's first instruction (docs/running.md)
    const guest = await driver.launch(prepared, { consoleFirst: true });
    let console: Duplex;
    try {
      console = await guest.openConsole();
    } catch (err) {
      await guest.destroy();
      throw err;
    }
    console.once('data', () => mark('console: first byte'));
    console.on('data', (chunk: Buffer) => process.stdout.write(chunk));
    console.on('error', () => undefined); // QEMU going away is reported through guest.exited
    const stopper = new GuestStopper(guest, def.shutdown_timeout * 1000);
    const offSignals = onStopSignals(() => stopper.request());
    // Nobody left to show the console to (`virtkit run ... | head`): stop the guest, once.
    const onStdoutError = (): void => { if (!stopper.isRequested) stopper.request(); };
    process.stdout.on('error', onStdoutError);
    const offLifecycle = guest.onEvent(notePolicy);
    try {
      return opts.untilReady
        ? await untilReady(guest, console, stopper, timeoutS)
        : await interactive(guest, console, stopper);
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

async function untilReady(guest: GuestHandle, console: Duplex, stopper: GuestStopper, timeoutS: number): Promise<number> {
  const ready = watchConsoleFor(console, READY_MARKER);
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    ready.found.then(() => 'ready' as const),
    guest.exited.then(() => 'exited' as const),
    stopper.requested.then(() => 'interrupted' as const),
    new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), timeoutS * 1000))),
  ]);
  clearTimeout(timer);
  ready.dispose();
  if (outcome === 'timeout') {
    note(`no "${READY_MARKER}" within ${timeoutS} s; stopping the guest`);
    await guest.destroy();
    return RunExit.notReady;
  }
  if (outcome === 'ready') {
    mark('console: marker seen');
    process.stdout.write('\n');
    note('guest is ready; stopping it');
    stopper.request();
  }
  if (outcome === 'exited') note('guest exited before it was ready');
  const status = exitStatus(await guest.exited);
  return outcome === 'ready' ? status : Math.max(status, RunExit.forced);
}

async function interactive(guest: GuestHandle, console: Duplex, stopper: GuestStopper): Promise<number> {
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
    return exitStatus(await guest.exited);
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
 * What the driver's lifecycle policy did about a guest that stopped itself, in words; nothing
 * for destroy (the exit says it) and for other events.
 */
export function policyMessage(ev: LifecycleEvent): string | undefined {
  if (ev.type !== 'policy') return undefined;
  const what = ev.what === 'poweroff' ? 'powered off' : ev.what === 'reboot' ? 'rebooted' : 'panicked';
  const setting = `on_${ev.what}`;
  if (ev.action === 'restart') return `guest ${what}; restarting it (${setting}: restart)`;
  if (ev.action === 'preserve') return `guest ${what}; kept stopped (${setting}: preserve); Ctrl-] or a signal ends it`;
  return undefined;
}

function notePolicy(ev: LifecycleEvent): void {
  const message = policyMessage(ev);
  if (message !== undefined) note(message);
}

/** Stops the guest once: cleanly with the timeout; a second request forces immediately. */
class GuestStopper {
  private requests = 0;
  private signalRequested!: () => void;
  readonly requested = new Promise<void>((r) => (this.signalRequested = r));

  constructor(private readonly guest: GuestHandle, private readonly timeoutMs: number) {}

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
      this.guest.stop({ timeoutMs: this.timeoutMs, preserve: false }).catch((err: unknown) => note(`clean stop failed: ${String(err)}`));
    } else if (this.requests === 2) {
      note('stopping the guest by force');
      this.guest.destroy().catch((err: unknown) => note(`forced stop failed: ${String(err)}`));
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
