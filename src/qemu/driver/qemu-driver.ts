/**
 * QemuDomainDriver: the DomainDriver of real QEMU. Phases, after libvirt's qemu_process:
 * prepare (capabilities, accelerator, boot files, command line: nothing runs yet) ->
 * launch (spawn, the CPUs held by -S only when something must come first: launch-argv.ts;
 * connect QMP; start held CPUs unless paused) or attach (adopt the QEMU
 * of a run dir after a daemon restart) -> a QemuGuest handle that carries the lifecycle
 * events and the on_* policy until QEMU is gone. See docs/qemu-driver.md.
 */
import { access, chmod, mkdir } from 'node:fs/promises';
import { resolve as resolvePath } from 'node:path';
import type { DomainDefinition, LifecycleAction } from '../../conf/index.js';
import { DEFAULT_QEMU_BINARY, probeCapabilities, resolveAccel, type Accel, type QemuCapabilities } from '../caps.js';
import { buildCommand } from '../command/index.js';
import { QemuProcess } from '../process.js';
import { ShutdownTraceArgs } from '../process/shutdown-trace.js';
import type { GuestStop } from './events.js';
import { restoreFailure, restoreFromFile } from './guest-state.js';
import { domainCapabilitiesOf, type DomainCapabilities } from './domcaps.js';
import { confineGuest, hasLimits, prepareHostResources, releaseGuestResources, startFilesystemHelpers } from './host-resources.js';
import { QemuGuest } from './qemu-guest.js';
import { launchArgv } from './launch-argv.js';
import { readFirmwareDescriptors, OvmfDefaults } from '../firmware/index.js';
import { virtiofsdInstalled } from '../virtiofs/index.js';
import { mark } from '../../util/timeline.js';
import type { DomainDriver, GuestHandle, HostCapabilities, LaunchOptions, PrepareOptions, PreparedLaunch } from './types.js';

export interface QemuDriverOptions {
  /** QEMU binary, a name on PATH or a path. Default qemu-system-x86_64. */
  binary?: string;
  /** Where the capability probe is cached on disk (caps.ts; default $XDG_CACHE_HOME/virtkit). */
  cacheDir?: string;
  /** A policy action (restart, ending a kept guest) failed: what the guest did, what was attempted, in which run dir. */
  onActionError?: (err: unknown, failed: { runDir: string; what: GuestStop; action: LifecycleAction }) => void;
}

export class QemuDomainDriver implements DomainDriver {
  readonly kind = 'qemu' as const;
  private caps: Promise<QemuCapabilities> | undefined;
  private domcaps: Promise<DomainCapabilities> | undefined;

  constructor(private readonly opts: QemuDriverOptions = {}) {}

  /** Everything the probe found (machines, CPU models, devices...), probed once per driver. */
  qemuCapabilities(): Promise<QemuCapabilities> {
    if (this.caps === undefined) {
      const probing = probeCapabilities({
        ...(this.opts.binary !== undefined ? { binary: this.opts.binary } : {}),
        ...(this.opts.cacheDir !== undefined ? { cacheDir: this.opts.cacheDir } : {}),
      });
      this.caps = probing;
      // A failed probe is not kept: the next call tries again (QEMU may have been installed).
      probing.catch(() => { if (this.caps === probing) this.caps = undefined; });
    }
    return this.caps;
  }

  /** Machines, CPU models and devices from the cached probe, firmware from the descriptors (read once per driver). */
  async domainCapabilities(): Promise<DomainCapabilities> {
    this.domcaps ??= (async () => {
      const [caps, images, virtiofsd, ovmf] = await Promise.all([
        this.qemuCapabilities(), readFirmwareDescriptors(), virtiofsdInstalled(),
        access(OvmfDefaults.code).then(() => true, () => false),
      ]);
      return domainCapabilitiesOf(caps, images, { ovmf, virtiofsd });
    })();
    const probing = this.domcaps;
    probing.catch(() => { if (this.domcaps === probing) this.domcaps = undefined; });
    return probing;
  }

  async capabilities(): Promise<HostCapabilities> {
    const caps = await this.qemuCapabilities();
    const { major, minor, micro } = caps.version;
    return {
      binary: caps.binary,
      version: `${major}.${minor}.${micro}`,
      accelerators: [...caps.accelerators],
      kvm: { usable: caps.kvm.usable, reason: caps.kvm.reason },
    };
  }

  /**
   * The accelerator (`auto` asks the capabilities, whose KVM verdict comes from a functional
   * check; an explicit one needs no probe), the boot files of `boot.loader: guest` (read out of
   * the guest's disk into the run dir), the command line (launch adds -S when the CPUs must wait).
   */
  async prepare(def: DomainDefinition, opts: PrepareOptions): Promise<PreparedLaunch> {
    const runDir = resolvePath(opts.runDir);
    const { binary, accel, reason } = await this.chooseAccel(def);
    mark('driver: accelerator chosen');
    await mkdir(runDir, { recursive: true, mode: 0o700 });
    await chmod(runDir, 0o700);
    const volumePaths = opts.volumePaths;
    const bootFiles = def.boot.loader === 'guest'
      ? await (await guestBoot()).prepareGuestBoot(def, runDir, volumePaths ? { volumePaths } : {})
      : undefined;
    const resources = await prepareHostResources(def, { stateDir: opts.stateDir ?? runDir });
    const command = buildCommand(def, {
      binary, accel, runDir, ...(volumePaths ? { volumePaths } : {}), ...(bootFiles ? { bootFiles } : {}), ...resources,
    });
    // the shutdown trace logs a power-off QMP could not report (monitor lost: process/shutdown-trace.ts);
    // whether the CPUs wait for QMP (-S) is decided at launch (launch-argv.ts)
    const argv = [...ShutdownTraceArgs, ...command.argv];
    mark('driver: argv built');
    return {
      definition: def, runDir, accel, accelReason: reason, command: { binary: command.binary, argv, env: command.env },
      ...(resources.filesystemDrivers ? { filesystemDrivers: resources.filesystemDrivers } : {}),
    };
  }

  /**
   * Spawns QEMU detached in its own session (QemuProcess.launchCommand: 'qemu.failed-to-start'
   * with QEMU's own stderr line, 'qemu.not-found', 'domain.invalid-state' when a live QEMU owns
   * the run dir), connects QMP, starts the CPUs unless `paused`. The handle's first event is
   * `started`.
   */
  async launch(prepared: PreparedLaunch, opts: LaunchOptions = {}): Promise<GuestHandle> {
    // a restore: QEMU waits for the saved stream (migrate-incoming, guest-state.ts) instead of booting
    const incomingArgs = opts.incoming ? ['-incoming', 'defer'] : [];
    // -S only when something must come before the guest's first instruction (launch-argv.ts)
    const holdCpus = opts.paused === true || opts.incoming !== undefined || hasLimits(prepared.definition);
    const { argv, consoleHeld } = launchArgv([...prepared.command.argv, ...incomingArgs], { holdCpus, consoleFirst: opts.consoleFirst === true });
    // virtiofsd first: QEMU connects to its socket while it starts
    await startFilesystemHelpers(prepared.definition, prepared.runDir, prepared.filesystemDrivers);
    let proc: QemuProcess;
    try {
      proc = await QemuProcess.launchCommand({
        command: { binary: prepared.command.binary, argv, env: { ...prepared.command.env } },
        runDir: prepared.runDir,
        // the CPUs stay as the command line has them; guest.start() below continues held ones
        paused: argv.includes('-S'),
        consoleFirst: consoleHeld,
        ...(opts.startTimeoutMs !== undefined ? { startTimeoutMs: opts.startTimeoutMs } : {}),
      });
    } catch (err) {
      await releaseGuestResources(prepared.runDir, prepared.definition.uuid);
      throw err;
    }
    const guest = this.handleOf(proc, prepared.definition, prepared.accel);
    // loader: guest: QEMU read the extracted kernel and initrd into memory when it created the machine; no copy stays in the run dir
    if (prepared.definition.boot.loader === 'guest') await (await guestBoot()).removeBootFiles(prepared.runDir);
    try {
      // into its cgroup: with limits while -S still holds the CPUs, so no guest code runs
      // unconfined; without, only the accounting of QEMU's first moments is the parent's
      await confineGuest(prepared.definition, proc.pid);
      if (opts.incoming) {
        const incoming = opts.incoming;
        await restoreFromFile(proc.qmp, proc.runDir, incoming, incoming.onProgress).catch(async (err: unknown) => { throw await restoreFailure(err, proc.runDir, incoming); });
      }
      await guest.start(opts.paused ?? false);
      mark(opts.paused ? 'driver: launched paused' : 'driver: running');
    } catch (err) {
      await guest.destroy().catch(() => undefined);
      throw err;
    }
    return guest;
  }

  /**
   * Adopts the QEMU of a run dir: 'process.stale' unless its pid is alive and /proc says it is
   * a QEMU naming this run dir's QMP socket with `-uuid def.uuid`; 'qmp.timeout' when another
   * client holds its QMP (QEMU serves one at a time). No `started` event: it was running.
   */
  async attach(def: DomainDefinition, runDir: string): Promise<GuestHandle> {
    const proc = await QemuProcess.attach(runDir, { uuid: def.uuid });
    return this.handleOf(proc, def, accelOfCommandLine(proc.commandLine) ?? 'unknown');
  }

  private handleOf(proc: QemuProcess, def: DomainDefinition, accel: Accel | 'unknown'): QemuGuest {
    const onActionError = this.opts.onActionError;
    return new QemuGuest(proc, {
      definition: def,
      accel,
      release: () => releaseGuestResources(proc.runDir, def.uuid),
      ...(onActionError ? { onActionError: (err: unknown, what: GuestStop, action: LifecycleAction) => onActionError(err, { runDir: proc.runDir, what, action }) } : {}),
    });
  }

  private async chooseAccel(def: DomainDefinition): Promise<{ binary: string; accel: Accel; reason: string }> {
    if (def.accel !== 'auto') return { binary: this.opts.binary ?? DEFAULT_QEMU_BINARY, accel: def.accel, reason: `${def.accel} requested` };
    const caps = await this.qemuCapabilities();
    const resolved = resolveAccel('auto', caps);
    // build.ts gives `cpu: host` TCG's `max`: the reason says so, as dominfo and `run` show it
    const reason = def.cpu === 'host' && resolved.accel !== 'kvm' ? `${resolved.reason}; cpu host runs as max under ${resolved.accel}` : resolved.reason;
    return { binary: caps.binary, accel: resolved.accel, reason };
  }
}

/**
 * The guest filesystem readers and bootloader parsers that `boot.loader: guest` needs, loaded
 * on its first use: every other start (and `virtkit run`'s start-up) goes without them.
 */
function guestBoot(): Promise<typeof import('../../guestfs/boot/index.js')> {
  return import('../../guestfs/boot/index.js');
}

/** The accelerator a QEMU command line asks for (`-machine ...,accel=X` or `-accel X`), when it says. */
export function accelOfCommandLine(argv: readonly string[]): Accel | undefined {
  let found: string | undefined;
  for (let i = 0; i < argv.length - 1; i++) {
    const opt = argv[i];
    const value = argv[i + 1]!;
    if (opt === '-machine' || opt === '-M') {
      const m = /(?:^|,)accel=([a-z]+)/.exec(value);
      if (m) found = m[1];
    } else if (opt === '-accel') {
      found = /^(?:accel=)?([a-z]+)/.exec(value)?.[1];
    }
  }
  return found === 'kvm' || found === 'tcg' ? found : undefined;
}
