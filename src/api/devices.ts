/**
 * Hot-plug, memory and CPUs: schemas and method table entries (merged into `Methods`).
 * docs/hotplug.md and docs/memory-cpus.md describe the behaviour; virsh's verbs map one to one
 * (attach-disk, detach-disk, attach-interface, detach-interface, domblklist, domiflist, setmem,
 * setmaxmem, dommemstat, setvcpus, vcpuinfo).
 *
 * `live` and `config` say which definition a change applies to: the running guest's (live)
 * and the saved one, used by the next start (config). Neither given: both for a running guest,
 * the saved one for a stopped guest. `live` on a stopped guest is refused.
 */
import { Type, type Static, type TLiteral, type TUnion } from '@sinclair/typebox';
import { DiskBuses, DiskFormats, NicModels } from '../conf/vocabulary/index.js';
import type { MethodSpec } from './methods.js';
import { NameParams } from './schemas.js';

const strict = { additionalProperties: false } as const;

type LiteralTuple<T extends readonly string[]> = { -readonly [K in keyof T]: TLiteral<T[K]> };

/** A string enumeration as a union of literals (its Static type is the union of the values). */
function literals<const T extends readonly string[]>(values: T): TUnion<LiteralTuple<T>> {
  return Type.Union(values.map((v) => Type.Literal(v))) as unknown as TUnion<LiteralTuple<T>>;
}

const Scope = {
  live: Type.Optional(Type.Boolean({ description: 'change the running guest' })),
  config: Type.Optional(Type.Boolean({ description: 'change the saved definition (the next start)' })),
};

export const DeviceTargetParams = Type.Object({ name: NameParams.properties.name, device: Type.String({ minLength: 1, maxLength: 64 }) }, strict);
export type DeviceTargetParams = Static<typeof DeviceTargetParams>;

export const ScopeQuery = Type.Object({ ...Scope }, strict);
export type ScopeQuery = Static<typeof ScopeQuery>;

export const AttachDiskBody = Type.Object({
  /** An absolute host path of the image; or `volume`. */
  source: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
  /** `pool/volume`, instead of `source`. */
  volume: Type.Optional(Type.String({ minLength: 3, maxLength: 256 })),
  /** Guest-side name (vdb, sdc...); its prefix must be the bus's. */
  target: Type.String({ minLength: 3, maxLength: 8 }),
  format: Type.Optional(literals(DiskFormats)),
  bus: Type.Optional(literals(DiskBuses)),
  readonly: Type.Optional(Type.Boolean()),
  ...Scope,
}, strict);
export type AttachDiskBody = Static<typeof AttachDiskBody>;

export const AttachInterfaceBody = Type.Object({
  model: Type.Optional(literals(NicModels)),
  /** `user` (default) or a virtkit network's name (docs/networks.md): the manager makes the tap. */
  network: Type.Optional(Type.String({ maxLength: 64 })),
  mac: Type.Optional(Type.String({ maxLength: 32 })),
  ...Scope,
}, strict);
export type AttachInterfaceBody = Static<typeof AttachInterfaceBody>;

export const DeviceChange = Type.Object({
  kind: Type.Union([Type.Literal('disk'), Type.Literal('interface')]),
  /** The device id (a disk's is its target unless the definition says otherwise). */
  id: Type.String(),
  target: Type.Optional(Type.String()),
  mac: Type.Optional(Type.String()),
  /** Whether the running guest and the saved definition were changed. */
  live: Type.Boolean(),
  config: Type.Boolean(),
});
export type DeviceChange = Static<typeof DeviceChange>;

export const InactiveQuery = Type.Object({
  inactive: Type.Optional(Type.Boolean({ description: 'list the saved definition\'s devices instead of the running guest\'s' })),
}, strict);
export type InactiveQuery = Static<typeof InactiveQuery>;

export const BlockDeviceRow = Type.Object({
  target: Type.String(),
  id: Type.String(),
  bus: Type.String(),
  format: Type.String(),
  /** Host path, or `pool/volume`. */
  source: Type.String(),
  readonly: Type.Boolean(),
});
export const BlockList = Type.Object({ disks: Type.Array(BlockDeviceRow) });
export type BlockList = Static<typeof BlockList>;

export const InterfaceRow = Type.Object({ id: Type.String(), type: Type.String(), model: Type.String(), mac: Type.String() });
export const InterfaceList = Type.Object({ interfaces: Type.Array(InterfaceRow) });
export type InterfaceList = Static<typeof InterfaceList>;

export const MemorySizeBody = Type.Object({
  /** Bytes, a whole number of MiB. */
  size: Type.Integer({ minimum: 0 }),
}, strict);
export type MemorySizeBody = Static<typeof MemorySizeBody>;

export const SetMemoryResult = Type.Object({
  /** The balloon target asked for, in bytes. */
  target: Type.Integer(),
  /** The memory the guest has once it settled (or when the wait ended), in bytes. */
  actual: Type.Integer(),
  /** Whether `actual` reached `target` within the wait. */
  settled: Type.Boolean(),
});
export type SetMemoryResult = Static<typeof SetMemoryResult>;

export const SetMaxMemoryResult = Type.Object({
  /** The saved definition's memory now (the next boot), in bytes. */
  memory: Type.Integer(),
  /** The running guest's maximum (its boot memory), unchanged until it is restarted. */
  liveMemory: Type.Optional(Type.Integer()),
});
export type SetMaxMemoryResult = Static<typeof SetMaxMemoryResult>;

export const MemoryStatsResult = Type.Object({
  actual: Type.Integer(),
  pollIntervalSeconds: Type.Integer(),
  lastUpdate: Type.Optional(Type.Integer()),
  /** Bytes (faults and hugetlb counts: numbers), by virsh's names: swap_in, unused, available, usable... */
  stats: Type.Record(Type.String(), Type.Integer()),
});
export type MemoryStatsResult = Static<typeof MemoryStatsResult>;

export const SetVcpusBody = Type.Object({ count: Type.Integer({ minimum: 0, maximum: 1024 }), ...Scope }, strict);
export type SetVcpusBody = Static<typeof SetVcpusBody>;

export const SetVcpusResult = Type.Object({
  /** vCPUs of the running guest now, when it was changed. */
  live: Type.Optional(Type.Integer()),
  /** vCPUs of the saved definition now, when it was changed. */
  config: Type.Optional(Type.Integer()),
});
export type SetVcpusResult = Static<typeof SetVcpusResult>;

export const VcpuInfoRow = Type.Object({
  vcpu: Type.Integer(),
  threadId: Type.Integer(),
  cpuTimeSeconds: Type.Optional(Type.Number()),
  hotplugged: Type.Boolean(),
});
export const VcpuInfoList = Type.Object({ vcpus: Type.Array(VcpuInfoRow) });
export type VcpuInfoList = Static<typeof VcpuInfoList>;

const Active = ['running', 'paused'] as const;

export const DeviceMethods = {
  'domain.attachDisk': { http: 'POST', path: '/domains/:name/disks', summary: 'Attach a disk (live and/or saved definition)', params: NameParams, body: AttachDiskBody, result: DeviceChange, status: 201, states: 'any', access: 'admin', long: false },
  'domain.detachDisk': { http: 'DELETE', path: '/domains/:name/disks/:device', summary: 'Detach a disk by target or id; waits for the guest to release it', params: DeviceTargetParams, query: ScopeQuery, result: DeviceChange, states: 'any', access: 'write', long: false },
  'domain.blockList': { http: 'GET', path: '/domains/:name/disks', summary: 'The disks of the running guest (or of the saved definition)', params: NameParams, query: InactiveQuery, result: BlockList, states: 'any', access: 'read', long: false },
  'domain.attachInterface': { http: 'POST', path: '/domains/:name/interfaces', summary: 'Attach a network interface (live and/or saved definition)', params: NameParams, body: AttachInterfaceBody, result: DeviceChange, status: 201, states: 'any', access: 'write', long: false },
  'domain.detachInterface': { http: 'DELETE', path: '/domains/:name/interfaces/:device', summary: 'Detach a network interface by MAC or id; waits for the guest to release it', params: DeviceTargetParams, query: ScopeQuery, result: DeviceChange, states: 'any', access: 'write', long: false },
  'domain.interfaceList': { http: 'GET', path: '/domains/:name/interfaces', summary: 'The network interfaces of the running guest (or of the saved definition)', params: NameParams, query: InactiveQuery, result: InterfaceList, states: 'any', access: 'read', long: false },
  'domain.setMemory': { http: 'PUT', path: '/domains/:name/memory', summary: 'Set the balloon target; answers once the guest settled (bounded wait)', params: NameParams, body: MemorySizeBody, result: SetMemoryResult, states: Active, access: 'write', long: false },
  'domain.setMaxMemory': { http: 'PUT', path: '/domains/:name/maxmemory', summary: 'Set the saved definition\'s memory (the maximum, from the next start)', params: NameParams, body: MemorySizeBody, result: SetMaxMemoryResult, states: 'any', access: 'write', long: false },
  'domain.memoryStats': { http: 'GET', path: '/domains/:name/memory/stats', summary: 'Balloon size and the guest\'s memory statistics', params: NameParams, result: MemoryStatsResult, states: Active, access: 'read', long: false },
  'domain.setVcpus': { http: 'PUT', path: '/domains/:name/vcpus', summary: 'Set the vCPU count (CPU hot-plug up to maxvcpus, and/or the saved definition)', params: NameParams, body: SetVcpusBody, result: SetVcpusResult, states: 'any', access: 'write', long: false },
  'domain.vcpuInfo': { http: 'GET', path: '/domains/:name/vcpus', summary: 'vCPUs of the running guest: host thread ids and CPU time', params: NameParams, result: VcpuInfoList, states: Active, access: 'read', long: false },
} as const satisfies Record<string, MethodSpec>;
