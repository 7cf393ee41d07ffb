/** conf/: the domain definition: schema, validation, defaults, YAML/JSON in and out. Knows no QEMU. */
export {
  Accels, BootLoaders, CacheModes, DeviceIdPattern, DiskBuses, DiskFormats, DiskTargetPattern, DomainDefinitionSchema,
  FilesystemDrivers, FilesystemTagPattern, FirmwareKinds, VideoModels, GraphicsModes, HostShutdownPolicies, LifecycleActions, MinMemoryBytes, NicModels, ScsiControllerModes,
} from './schema.js';
export type {
  Accel, BootConfig, BootLoader, CacheMode, ControllersConfig, DirectBoot, DiskBoot, DiskBus, DiskDefinition, DiskFormat,
  DomainDefinition, FilesystemDefinition, FilesystemDriver, FirmwareKind, VideoModel, GraphicsMode, GuestBoot, HostShutdownPolicy, LifecycleAction, NicDefinition, NicModel, ScsiControllerMode,
} from './schema.js';
export { videoModelOf } from './host-resources.js';
export { BuiltinDeviceIds, TargetPrefixes, bootDiskIndex, targetIndex, targetName } from './devices.js';
export { DomainDefinitionInputSchema } from './input-schema.js';
export { validateDefinition, randomMac, type ValidateOptions } from './validate.js';
export {
  parseDefinition, parseDefinitionDocument, loadDefinition, readDefinitionFile, formatDefinition, definitionDocument, formatOfPath, MaxDefinitionBytes,
  type DefinitionFile, type DefinitionFormat, type ParseOptions, type TextPosition,
} from './parse.js';
export { parseSize, formatSize } from './size.js';
export { renderFieldTable, definitionFields } from './docs.js';
