/**
 * The domain driver contract: the one owner of a guest's hypervisor side. The manager
 * (daemon/) and `virtkit run` (cli/) talk to a guest only through these types; the QEMU
 * driver (qemu-driver.ts) and the in-process fake (fake-driver.ts) implement them with the
 * same event semantics, so manager tests run against the fake in milliseconds and the same
 * scenario list runs against real QEMU in the integration suite.
 *
 * Phases, after libvirt's qemu_process: prepare (capabilities, accelerator, boot files,
 * command line) -> launch -> running; or attach (adopt a run dir after a daemon restart);
 * then stop (clean, with a timeout, then forced) or destroy. on_poweroff / on_reboot /
 * on_crash are carried out inside the driver, in one place; callers only see typed
 * lifecycle events describing what happened and what the policy did about it.
 */
import type { Duplex } from 'node:stream';
import type { DiskDefinition, DomainDefinition, NicDefinition } from '../../conf/index.js';
import type { Accel } from '../caps.js';
import type { ResolvedFsDriver } from '../command/index.js';
import type { DomainCapabilities } from './domcaps.js';
import type { ResourceLimits, ResourceLimitsInfo, Screenshot } from './host-resources.js';
import type { DumpFormat, ProgressListener, StreamFile } from './guest-state.js';

/** How a QEMU run ended (see ExitInfo in process.ts for the classification rules). */
export type ExitReason = 'shutdown' | 'destroyed' | 'crashed';
export type ForcedBy = 'quit' | 'SIGTERM' | 'SIGKILL';

export interface ExitInfo {
  /**
   * shutdown: the guest powered off (by itself or on our power-button request);
   * destroyed: the host stopped QEMU (our destroy or forced stop, `quit`, a signal);
   * crashed: QEMU went away without a power-off, or the guest panicked.
   */
  reason: ExitReason;
  /** The guest powered off (or reset under -no-reboot) without anybody asking it to. */
  guestInitiated: boolean;
  /** QEMU's SHUTDOWN reason (`guest-shutdown`, `host-signal`, `host-qmp-quit`...) when one was seen. */
  shutdownReason?: string;
  /** Set when the driver stopped QEMU by force: what finally ended it. */
  forcedBy?: ForcedBy;
  /** Exit status; known only for a QEMU this process spawned. */
  exitCode?: number | null;
  signal?: NodeJS.Signals | null;
}

/** What the lifecycle policy did about a guest that stopped itself (on_poweroff / on_reboot / on_crash). */
export type PolicyAction = 'restart' | 'preserve' | 'destroy';

/**
 * Typed lifecycle events, produced from QMP events in one module (events.ts) for the QEMU
 * driver, and by the fake driver directly. Events of operations the caller itself asked for
 * through this interface (pause(), resume(), reset(), reboot()) carry `by: 'host'`; changes
 * nobody asked the driver for (a raw monitor `stop`, the guest rebooting itself) carry
 * `by: 'guest'` or `by: 'monitor'`.
 */
export type LifecycleEvent =
  | { type: 'started'; paused: boolean }
  | { type: 'paused'; by: 'host' | 'monitor' | 'policy'; reason?: string }
  | { type: 'resumed'; by: 'host' | 'monitor' }
  /** The guest powered off (QEMU may still be up, keeping it, under a preserve/restart policy). */
  | { type: 'shutdown'; by: 'guest' | 'host'; reason: string }
  /** A reset: from the guest (it rebooted itself) or the host (reset(), reboot(), a restart policy). Firmware follow-up resets are folded into one. */
  | { type: 'reset'; by: 'guest' | 'host' }
  /** The guest panicked (pvpanic). */
  | { type: 'crashed'; action: PolicyAction }
  /** The policy acted on a guest that stopped itself: `what` happened, `action` is what the definition asked for. */
  | { type: 'policy'; what: 'poweroff' | 'reboot' | 'crash'; action: PolicyAction }
  /** QMP was lost while QEMU lives (the driver reconnects), and found again. */
  | { type: 'monitor-lost' }
  | { type: 'monitor-restored' }
  /** QEMU is gone. Always the last event of a handle. */
  | { type: 'exited'; exit: ExitInfo };

export type LifecycleListener = (ev: LifecycleEvent) => void;

/** The guest's run state as the hypervisor sees it. */
export type GuestRunState = 'running' | 'paused' | 'shutdown' | 'crashed' | 'prelaunch' | 'other';

/** What prepare() decided: everything launch() needs, nothing it has to look up again. */
export interface PreparedLaunch {
  readonly definition: DomainDefinition;
  readonly runDir: string;
  readonly accel: Accel;
  /** Why this accelerator (e.g. `kvm functional check failed: ...`). */
  readonly accelReason: string;
  /** The program and its arguments exactly as they will be executed (no shell). */
  readonly command: { binary: string; argv: readonly string[]; env: Readonly<Record<string, string>> };
  /** Each shared folder's driver as resolved for this host (virtio-fs ones get a virtiofsd at launch). */
  readonly filesystemDrivers?: readonly ResolvedFsDriver[];
}

export interface PrepareOptions {
  /** The run directory of this guest (created 0700 when missing). */
  runDir: string;
  /** Host paths of disks that name a pool volume (`pool/name` -> path), resolved by the caller. */
  volumePaths?: Record<string, string>;
  /** The domain's persistent directory (its UEFI variable store); default the run dir. */
  stateDir?: string;
}

export interface LaunchOptions {
  /** Leave the guest's CPUs stopped after start (QEMU starts with -S then). Default false. */
  paused?: boolean;
  /**
   * Boot-time console (`virtkit run`): connect the serial console before the guest's first
   * instruction and hand that connection to the first openConsole(), so nothing the guest prints
   * is lost, without holding the CPUs for a QMP round trip (QEMU waits for the console client
   * instead). The caller must read the console it takes. Default false.
   */
  consoleFirst?: boolean;
  /** Bound on QEMU creating its QMP socket and answering. */
  startTimeoutMs?: number;
  /** Restore: the guest's state is loaded from this saved migration stream instead of booting (save/restore). */
  incoming?: StreamFile & { onProgress?: ProgressListener };
}

export interface StopOptions {
  /** How long the guest may take to power off before it is stopped by force. */
  timeoutMs: number;
  /**
   * A guest that powered off while QEMU keeps it: true leaves it there (state shutdown), false
   * ends QEMU. Default: the definition's `on_poweroff: preserve`.
   */
  preserve?: boolean;
}

/** A device as the hypervisor has it, by the stable id shared with the definition. */
export interface DeviceInfo {
  id: string;
  kind: 'disk' | 'nic' | 'controller' | 'other';
}

/**
 * One running (or kept) guest. Obtained from DomainDriver.launch() or attach(); every
 * method throws VirtkitError with a stable code (`qmp.disconnected`, `operation.timeout`,
 * `operation.unsupported`, ...).
 */
export interface GuestHandle {
  readonly pid: number;
  readonly runDir: string;
  readonly accel: Accel | 'unknown';
  /** Resolves once QEMU is gone (after the `exited` event). Never rejects. */
  readonly exited: Promise<ExitInfo>;
  /** Subscribe to lifecycle events; returns the unsubscribe function. */
  onEvent(fn: LifecycleListener): () => void;

  state(): Promise<GuestRunState>;
  /** ACPI power button, re-pressed while unheard; forced after `timeoutMs`. */
  stop(opts: StopOptions): Promise<'clean' | 'forced'>;
  /** Stops QEMU at once (quit, SIGTERM, SIGKILL), resolving with how it ended. */
  destroy(): Promise<ExitInfo>;
  pause(): Promise<void>;
  resume(): Promise<void>;
  /** Hard reset (the reset button). */
  reset(): Promise<void>;
  /** Clean reboot: the guest powers off through ACPI and is started again in the same QEMU. */
  reboot(opts?: { timeoutMs?: number }): Promise<void>;

  /** The definition QEMU runs now (the one it was launched with, plus hot-plugged changes). */
  liveDefinition(): DomainDefinition;
  /** Devices present in the hypervisor, by stable id. */
  devices(): Promise<DeviceInfo[]>;

  /** The audited passthrough (`qemu-monitor-command`): raw QMP or HMP. HMP errors are thrown as `qmp.command-failed`. */
  monitor(command: { qmp: { execute: string; arguments?: Record<string, unknown> } } | { hmp: string }): Promise<unknown>;

  /** The serial console as a byte stream (one connection per call). */
  openConsole(): Promise<Duplex>;
  /** The console log file the hypervisor appends to. */
  readonly consoleLogPath: string;

  // ---- hot-plug, memory and CPUs (docs/hotplug.md, docs/memory-cpus.md; QMP in hotplug.ts)
  /**
   * Plugs a disk whose image is `hostPath` (block nodes, then the device, named as at start);
   * the live definition gains it. On failure whatever was added is taken out again.
   */
  attachDisk(disk: DiskDefinition, hostPath: string): Promise<void>;
  /** Unplugs the disk with this id: `device_del`, DEVICE_DELETED within `timeoutMs` (else `device.detach-timeout`), then its nodes. */
  detachDisk(id: string, opts: DetachOptions): Promise<void>;
  /** Plugs a NIC (netdev, then device); the live definition gains it. */
  attachNic(nic: NicDefinition): Promise<void>;
  /** Unplugs the NIC with this id, as detachDisk. */
  detachNic(id: string, opts: DetachOptions): Promise<void>;
  /** Sets the balloon target: the memory the guest may use (at most the boot memory). */
  setMemory(bytes: number): Promise<void>;
  /** The balloon's `actual` size and the guest's statistics. */
  memoryStats(): Promise<MemoryStats>;
  /** Plugs (or unplugs, hot-plugged ones only) CPUs until `count` are present; the live definition's vcpus follows. */
  setVcpus(count: number, opts: DetachOptions): Promise<void>;
  /** Each vCPU's host thread and CPU time. */
  vcpuInfo(): Promise<VcpuInfo[]>;

  // ---- resource limits, screens and keys (docs/resource-limits.md, docs/screens.md; host-resources.ts)
  /** Writes cgroup limits for the running QEMU (an absent one: no limit); the live definition follows. */
  setResourceLimits(limits: ResourceLimits): Promise<void>;
  /** The limits the guest's cgroup enforces now, and where it is (no `cgroup`: the guest has none). */
  resourceLimits(): Promise<ResourceLimitsInfo>;
  /** The screen as PNG (`screendump`). */
  screenshot(): Promise<Screenshot>;
  /** Presses the keys together, then releases them (`send-key`); names as in screens/keys.ts. */
  sendKeys(keys: readonly string[], holdMs?: number): Promise<void>;
  /** Sets a random VNC password over QMP and returns it; `operation.unsupported` without `vnc_password`. */
  setVncPassword(): Promise<string>;

  /** Stops watching; the guest keeps running (daemon stop). */
  detach(): void;

  // ---- save/restore, snapshots, memory dumps (docs/save-restore.md, snapshots.md, dumps.md)
  /**
   * Stops the CPUs, writes the migration stream into `file` after its header, then ends QEMU
   * (the exit is `destroyed`, by `quit`). Resolves with the stream's length. On failure the
   * guest is left as it was (running again if it ran) and nothing is ended.
   */
  saveState(file: StreamFile, onProgress?: ProgressListener): Promise<number>;
  /** Internal snapshot of disks and RAM into the qcow2 disks: take, go back to, or delete `tag`. */
  internalSnapshot(op: 'save' | 'load' | 'delete', tag: string, onProgress?: ProgressListener): Promise<void>;
  /**
   * External disk-only snapshot: each listed disk's top becomes its overlay (a qcow2 created by
   * the caller, backed by the current image), all or none; `live` is the definition from then on.
   */
  externalSnapshot(overlays: readonly { id: string; overlay: string }[], tag: string, live: DomainDefinition): Promise<void>;
  /** The guest's memory into `path` (`dump-guest-memory`), without its cooperation; a paused guest stays paused. */
  dumpMemory(path: string, format: DumpFormat, onProgress?: ProgressListener): Promise<void>;
}

/** How long an unplug waits for the guest to release the device. */
export interface DetachOptions {
  timeoutMs: number;
}

/** Balloon figures in bytes (`actual` from query-balloon; the rest as the guest last reported them, absent when it did not). */
export interface MemoryStats {
  /** The memory the guest has now (boot memory minus the inflated balloon). */
  actual: number;
  /** Seconds between the guest's reports. */
  pollIntervalSeconds: number;
  /** When the guest last reported (Unix seconds); absent before its first report. */
  lastUpdate?: number;
  stats: Partial<Record<MemoryStatName, number>>;
}

/** QEMU's balloon statistics, by the names dommemstat prints. */
export const MemoryStatNames = [
  'swap_in', 'swap_out', 'major_fault', 'minor_fault', 'unused', 'available', 'usable', 'disk_caches',
  'hugetlb_pgalloc', 'hugetlb_pgfail',
] as const;
export type MemoryStatName = (typeof MemoryStatNames)[number];

export interface VcpuInfo {
  /** QEMU's cpu-index. */
  vcpu: number;
  /** The host thread running it. */
  threadId: number;
  /** CPU time that thread used, in seconds (utime + stime); absent when /proc could not be read. */
  cpuTimeSeconds?: number;
  /** Plugged at run time (device id `vcpuN`), so it can be unplugged again. */
  hotplugged: boolean;
}

/** A host's hypervisor: capabilities, and guests launched or adopted through it. */
export interface DomainDriver {
  /** `qemu` or `fake`: shown in `daemon.info`. */
  readonly kind: 'qemu' | 'fake';
  /** Capabilities, probed once and cached; a failure is not cached. */
  capabilities(): Promise<HostCapabilities>;
  /** What definitions can ask of this host: machines, CPU models, firmware, device models (domcaps.ts). */
  domainCapabilities(): Promise<DomainCapabilities>;
  /** Phase 1: accelerator, boot files (read out of the guest disk for `loader: guest`), command line. */
  prepare(def: DomainDefinition, opts: PrepareOptions): Promise<PreparedLaunch>;
  /** Phase 2: start QEMU for a prepared launch. */
  launch(prepared: PreparedLaunch, opts?: LaunchOptions): Promise<GuestHandle>;
  /**
   * Adopt the QEMU of a run dir (daemon restart). Throws `process.stale` unless the pid is
   * alive AND its command line is this run dir's QEMU for `def.uuid`.
   */
  attach(def: DomainDefinition, runDir: string): Promise<GuestHandle>;
}

export interface HostCapabilities {
  binary: string;
  version: string;
  accelerators: string[];
  /** KVM works here (a functional check, not just /dev/kvm), and why (not). */
  kvm: { usable: boolean; reason: string };
}
