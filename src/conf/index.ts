/** conf/: the domain definition: schema, validation, defaults, YAML/JSON in and out. Knows no QEMU. */
export {
  Accels, BootLoaders, CacheModes, DiskBuses, DiskFormats, DomainDefinitionSchema, GraphicsModes,
  HostShutdownPolicies, LifecycleActions, MinMemoryBytes, NicModels,
} from './schema.js';
export type {
  Accel, BootConfig, BootLoader, CacheMode, DirectBoot, DiskBoot, DiskBus, DiskDefinition, DiskFormat,
  DomainDefinition, GraphicsMode, GuestBoot, HostShutdownPolicy, LifecycleAction, NicDefinition, NicModel,
} from './schema.js';
export { DomainDefinitionInputSchema } from './input-schema.js';
export { validateDefinition, randomMac, type ValidateOptions } from './validate.js';
export {
  parseDefinition, loadDefinition, readDefinitionFile, formatDefinition, definitionDocument, formatOfPath, MaxDefinitionBytes,
  type DefinitionFile, type DefinitionFormat, type ParseOptions, type TextPosition,
} from './parse.js';
export { parseSize, formatSize } from './size.js';
export { renderFieldTable, definitionFields } from './docs.js';
