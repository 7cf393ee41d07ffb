/** qemu/: the hypervisor driver. QemuDomainDriver (the DomainDriver contract), capabilities, the pure command builder, QMP, processes, console. */
export { probeCapabilities, resolveAccel, parseAccelHelp, DEFAULT_QEMU_BINARY } from './caps.js';
export type { Accel, AccelRequest, KvmVerdict, ProbeOptions, QemuCapabilities } from './caps.js';
export { QemuProcess, runPaths } from './process.js';
export { provenQemuOfRunDir, readCmdline, type IdentityVerdict } from './process/proc.js';
export type { ExitInfo, ExitReason, ForcedBy, LaunchCommandOptions, QemuCommandLine, RunActions, RunPaths, ShutdownOptions } from './process.js';
export { openConsole, watchConsoleFor } from './console.js';
export * from './qmp/index.js';
export * from './command/index.js';
export { QemuDomainDriver, accelOfCommandLine, type QemuDriverOptions } from './driver/qemu-driver.js';
export { QemuGuest } from './driver/qemu-guest.js';
export { LifecycleTracker, RESET_QUIET_MS, policyStep, type GuestStop, type LifecyclePolicy } from './driver/events.js';
export { hmpErrorOf, type MonitorCommand } from './driver/monitor.js';
export type {
  DeviceInfo, DomainDriver, GuestHandle, GuestRunState, HostCapabilities, LaunchOptions, LifecycleEvent, LifecycleListener,
  PolicyAction, PrepareOptions, PreparedLaunch, StopOptions,
} from './driver/types.js';
export { MemoryStatNames, type DetachOptions, type MemoryStats, type MemoryStatName, type VcpuInfo } from './driver/types.js';
export {
  DefaultTraceEventsFile, MaxTraceLineBytes, hostTraceCatalog, parseTraceArgs, parseTraceCatalog, parseTraceDecl, parseTraceLine, traceLineEvent,
  type TraceArg, type TraceEventDecl, type TraceRecord as QemuTraceRecord, type TraceValue as QemuTraceValue,
} from './driver/trace-format.js';
export { followLog, type FollowOptions, type LogFollower } from './driver/trace-follow.js';
export { releaseStaleGuestResources, type ResourceLimits, type ResourceLimitsInfo, type Screenshot } from './driver/host-resources.js';
export type { DomainCapabilities } from './driver/domcaps.js';
export { provenVirtiofsdRunDir } from './virtiofs/index.js';
