/**
 * The manager's view of the QEMU driver: launch a definition in a run directory, re-attach to
 * one, open its console. Capabilities are probed once per daemon and cached in the state dir.
 */
import type { Duplex } from 'node:stream';
import type { DomainDefinition } from '../conf/index.js';
import { prepareGuestBoot } from '../guestfs/boot/index.js';
import { buildCommand } from '../qemu/command/index.js';
import { probeCapabilities, resolveAccel, type QemuCapabilities } from '../qemu/caps.js';
import { openConsole } from '../qemu/console.js';
import { QemuProcess, type ExitInfo } from '../qemu/process.js';

export type GuestExit = ExitInfo;

/** A running guest's QEMU, with the accelerator it runs under. */
export class GuestProcess {
  constructor(private readonly proc: QemuProcess, readonly accel: string) {}

  get pid(): number { return this.proc.pid; }
  get runDir(): string { return this.proc.runDir; }
  get qmp(): QemuProcess['qmp'] { return this.proc.qmp; }
  get exited(): Promise<GuestExit> { return this.proc.exited; }

  status(): Promise<string> { return this.proc.status(); }
  shutdown(opts: { timeoutMs: number }): Promise<'clean' | 'forced'> { return this.proc.shutdown(opts); }
  async destroy(): Promise<void> { await this.proc.destroy(); }
  pause(): Promise<void> { return this.proc.pause(); }
  resume(): Promise<void> { return this.proc.resume(); }
  reset(): Promise<void> { return this.proc.reset(); }
  reboot(timeoutMs = 60_000): Promise<void> { return this.proc.reboot({ timeoutMs }); }
  /** Starts a guest QEMU kept stopped after it powered off, rebooted or panicked (a `restart` policy). */
  restartGuest(): Promise<void> { return this.proc.restartGuest(); }
  detach(): void { this.proc.detach(); }
}

export interface HypervisorOptions {
  binary?: string;
  /** Where the capability probe result is cached. */
  cacheDir: string;
  /** Host paths of a definition's `pool/volume` disks (daemon/pools.ts). */
  resolveVolumes?: (def: DomainDefinition) => Promise<Record<string, string>>;
}

export class Hypervisor {
  private caps: Promise<QemuCapabilities> | undefined;

  constructor(private readonly opts: HypervisorOptions) {}

  capabilities(): Promise<QemuCapabilities> {
    this.caps ??= probeCapabilities({ ...(this.opts.binary ? { binary: this.opts.binary } : {}), cacheDir: this.opts.cacheDir });
    // A failed probe is not cached: the next start tries again (QEMU may have been installed).
    this.caps.catch(() => { this.caps = undefined; });
    return this.caps;
  }

  async launch(def: DomainDefinition, runDir: string, paused: boolean): Promise<GuestProcess> {
    const caps = await this.capabilities();
    const { accel } = resolveAccel(def.accel, caps);
    const volumePaths = await this.opts.resolveVolumes?.(def);
    // boot.loader guest: the kernel and initrd are read out of the guest's own disk into the run directory.
    const bootFiles = def.boot.loader === 'guest' ? await prepareGuestBoot(def, runDir, volumePaths ? { volumePaths } : {}) : undefined;
    const command = buildCommand(def, {
      binary: caps.binary, accel, runDir, ...(volumePaths ? { volumePaths } : {}), ...(bootFiles === undefined ? {} : { bootFiles }),
    });
    const proc = await QemuProcess.launchCommand({ command, runDir, paused });
    return new GuestProcess(proc, accel);
  }

  async attach(runDir: string, uuid: string | undefined, accel: string): Promise<GuestProcess> {
    const proc = await QemuProcess.attach(runDir, uuid === undefined ? {} : { uuid });
    return new GuestProcess(proc, accel);
  }

  openConsole(runDir: string): Promise<Duplex> {
    return openConsole(runDir);
  }
}
