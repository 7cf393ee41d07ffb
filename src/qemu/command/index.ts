/** qemu/command: the QEMU command line as a pure function of a definition and a context. */
export { buildCommand, defaultCpuModel, type CommandContext, type QemuCommand } from './build.js';
export { runPaths, type RunPaths } from './run-paths.js';
export {
  blockdevProps, diskDeviceProps, diskPlacementProblem, scsiControllerProps, hasScsiController, diskDeviceId, diskNodeNames,
  CacheFlags, DiskDrivers, MaxScsiTarget, ScsiControllerId, type BlockdevNodes, type DiskNaming, type DiskPlacement,
} from './disk-props.js';
export { hasIsaBus, hasPciBus, ideLayout, type IdeLayout } from './machine.js';
export { netdevProps, nicDeviceProps, netdevId, nicDeviceId, NicDrivers } from './net-props.js';
export { lifecycleActions, actionOption, type QemuActions } from './lifecycle.js';
export { optionValue, keyValueOption, assertPlainValue, jsonOption, type JsonProps, type JsonValue } from './escape.js';
export { BalloonId, BalloonStatsIntervalSeconds, balloonProps, hasBalloon, smpOption } from './balloon-cpus.js';
export {
  FirmwareNodes, SharedMemoryId, VideoDrivers, filesystemDeviceId, resolveFsDrivers, virtiofsSocketPath,
  type FirmwareFiles, type ResolvedFsDriver,
} from './host-resources.js';
