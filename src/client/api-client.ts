/**
 * One method per API operation, over any transport: the Node entry (unix socket) and the
 * browser entry (fetch) both extend this and supply `call`, which the method table drives.
 * Platform-free.
 */
import type { MethodName } from '../api/index.js';
import type {
  DaemonInfo, DefinitionFormat, DefinitionText, DomainInfo, DomainList, DomainStateInfo, DomainSummary,
  HostShutdownResult, MonitorBody, ShutdownResult,
} from '../api/index.js';
import type { PoolDefineBody, PoolInfo, PoolList, VolumeCreateBody, VolumeInfo, VolumeList } from '../api/index.js';
import type {
  AttachDiskBody, AttachInterfaceBody, BlockList, DeviceChange, InactiveQuery, InterfaceList, MemoryStatsResult, ScopeQuery,
  SetMaxMemoryResult, SetMemoryResult, SetVcpusBody, SetVcpusResult, VcpuInfoList,
} from '../api/index.js';
import type { MethodInput, MethodResult } from './protocol.js';

export abstract class ApiClient {
  /** Call any method of the table by name; the named methods below are thin wrappers. */
  abstract call<M extends MethodName>(method: M, input?: MethodInput<M>): Promise<MethodResult<M>>;

  daemonInfo(): Promise<DaemonInfo> { return this.call('daemon.info'); }
  list(opts: { all?: boolean } = {}): Promise<DomainList> {
    return this.call('domain.list', { query: opts.all ? { all: true } : {} });
  }
  info(name: string): Promise<DomainInfo> { return this.call('domain.info', { params: { name } }); }
  state(name: string): Promise<DomainStateInfo> { return this.call('domain.state', { params: { name } }); }
  define(text: string, opts: { format?: DefinitionFormat; baseDir?: string } = {}): Promise<DomainInfo> {
    return this.call('domain.define', { body: { text, ...opts } });
  }
  undefine(name: string, opts: { force?: boolean } = {}): Promise<{ ok: true }> {
    return this.call('domain.undefine', { params: { name }, query: opts.force ? { force: true } : {} });
  }
  start(name: string, opts: { paused?: boolean } = {}): Promise<DomainInfo> {
    return this.call('domain.start', { params: { name }, body: opts });
  }
  shutdown(name: string, opts: { timeout?: number } = {}): Promise<ShutdownResult> {
    return this.call('domain.shutdown', { params: { name }, body: opts });
  }
  destroy(name: string): Promise<DomainStateInfo> { return this.call('domain.destroy', { params: { name } }); }
  reboot(name: string): Promise<{ ok: true }> { return this.call('domain.reboot', { params: { name } }); }
  reset(name: string): Promise<{ ok: true }> { return this.call('domain.reset', { params: { name } }); }
  suspend(name: string): Promise<DomainStateInfo> { return this.call('domain.suspend', { params: { name } }); }
  resume(name: string): Promise<DomainStateInfo> { return this.call('domain.resume', { params: { name } }); }
  setAutostart(name: string, enabled: boolean): Promise<DomainSummary> {
    return this.call('domain.setAutostart', { params: { name }, body: { enabled } });
  }
  getDefinition(name: string, format: DefinitionFormat = 'yaml'): Promise<DefinitionText> {
    return this.call('domain.getDefinition', { params: { name }, query: { format } });
  }
  updateDefinition(name: string, text: string, opts: { format?: DefinitionFormat; baseDir?: string } = {}): Promise<DomainInfo> {
    return this.call('domain.updateDefinition', { params: { name }, body: { text, ...opts } });
  }
  consoleLog(name: string): Promise<string> {
    return this.call('domain.consoleLog', { params: { name } }).then((r) => r.text);
  }
  monitorCommand(name: string, command: MonitorBody): Promise<unknown> {
    return this.call('domain.monitorCommand', { params: { name }, body: command }).then((r) => r.result);
  }
  hostShutdown(opts: { timeout?: number } = {}): Promise<HostShutdownResult> {
    return this.call('host.shutdown', { body: opts });
  }
  // observability (docs/observability.md)
  traceEvents(name: string, pattern?: string): Promise<MethodResult<'domain.traceEvents'>> { return this.call('domain.traceEvents', { params: { name }, query: pattern ? { pattern } : {} }); }
  domainStats(name: string): Promise<MethodResult<'domain.stats'>> { return this.call('domain.stats', { params: { name } }); }
  statsAll(names: string[] = []): Promise<MethodResult<'domain.statsAll'>> { return this.call('domain.statsAll', { query: names.length > 0 ? { name: names } : {} }); }
  // resource limits, screens and keys, domain capabilities (docs/resource-limits.md, docs/screens.md, docs/firmware.md)
  resourceLimits(name: string, query: MethodInput<'domain.resourceLimits'>['query'] = {}): Promise<MethodResult<'domain.resourceLimits'>> { return this.call('domain.resourceLimits', { params: { name }, query }); }
  setResourceLimits(name: string, body: MethodInput<'domain.setResourceLimits'>['body']): Promise<MethodResult<'domain.setResourceLimits'>> { return this.call('domain.setResourceLimits', { params: { name }, body }); }
  vncDisplay(name: string): Promise<MethodResult<'domain.vncDisplay'>> { return this.call('domain.vncDisplay', { params: { name } }); }
  setVncPassword(name: string): Promise<MethodResult<'domain.setVncPassword'>> { return this.call('domain.setVncPassword', { params: { name } }); }
  screenshot(name: string): Promise<MethodResult<'domain.screenshot'>> { return this.call('domain.screenshot', { params: { name } }); }
  sendKey(name: string, keys: string[], holdtime?: number): Promise<MethodResult<'domain.sendKey'>> { return this.call('domain.sendKey', { params: { name }, body: { keys, ...(holdtime !== undefined ? { holdtime } : {}) } }); }
  domainCapabilities(): Promise<MethodResult<'host.domainCapabilities'>> { return this.call('host.domainCapabilities', {}); }
  // hot-plug, memory and CPUs (docs/hotplug.md, docs/memory-cpus.md)
  attachDisk(name: string, body: AttachDiskBody): Promise<DeviceChange> { return this.call('domain.attachDisk', { params: { name }, body }); }
  detachDisk(name: string, device: string, scope: ScopeQuery = {}): Promise<DeviceChange> { return this.call('domain.detachDisk', { params: { name, device }, query: scope }); }
  blockList(name: string, opts: InactiveQuery = {}): Promise<BlockList> { return this.call('domain.blockList', { params: { name }, query: opts }); }
  attachInterface(name: string, body: AttachInterfaceBody = {}): Promise<DeviceChange> { return this.call('domain.attachInterface', { params: { name }, body }); }
  detachInterface(name: string, device: string, scope: ScopeQuery = {}): Promise<DeviceChange> { return this.call('domain.detachInterface', { params: { name, device }, query: scope }); }
  interfaceList(name: string, opts: InactiveQuery = {}): Promise<InterfaceList> { return this.call('domain.interfaceList', { params: { name }, query: opts }); }
  setMemory(name: string, size: number): Promise<SetMemoryResult> { return this.call('domain.setMemory', { params: { name }, body: { size } }); }
  setMaxMemory(name: string, size: number): Promise<SetMaxMemoryResult> { return this.call('domain.setMaxMemory', { params: { name }, body: { size } }); }
  memoryStats(name: string): Promise<MemoryStatsResult> { return this.call('domain.memoryStats', { params: { name } }); }
  setVcpus(name: string, body: SetVcpusBody): Promise<SetVcpusResult> { return this.call('domain.setVcpus', { params: { name }, body }); }
  vcpuInfo(name: string): Promise<VcpuInfoList> { return this.call('domain.vcpuInfo', { params: { name } }); }
  // save/restore, snapshots, memory dumps (docs/save-restore.md, docs/snapshots.md, docs/dumps.md)
  save(name: string, file: string): Promise<MethodResult<'domain.save'>> { return this.call('domain.save', { params: { name }, body: { file } }); }
  restore(file: string, opts: { force?: boolean } = {}): Promise<DomainInfo> { return this.call('domain.restore', { body: { file, ...opts } }); }
  managedSave(name: string): Promise<MethodResult<'domain.managedSave'>> { return this.call('domain.managedSave', { params: { name } }); }
  managedSaveRemove(name: string): Promise<MethodResult<'domain.managedSaveRemove'>> { return this.call('domain.managedSaveRemove', { params: { name } }); }
  jobInfo(name: string): Promise<MethodResult<'domain.jobInfo'>> { return this.call('domain.jobInfo', { params: { name } }); }
  snapshotCreate(name: string, body: MethodInput<'domain.snapshotCreate'>['body'] = {}): Promise<MethodResult<'domain.snapshotCreate'>> { return this.call('domain.snapshotCreate', { params: { name }, body }); }
  snapshotList(name: string): Promise<MethodResult<'domain.snapshotList'>> { return this.call('domain.snapshotList', { params: { name } }); }
  snapshotInfo(name: string, snapshot: string): Promise<MethodResult<'domain.snapshotInfo'>> { return this.call('domain.snapshotInfo', { params: { name, snapshot } }); }
  snapshotRevert(name: string, snapshot: string): Promise<DomainStateInfo> { return this.call('domain.snapshotRevert', { params: { name, snapshot } }); }
  snapshotDelete(name: string, snapshot: string): Promise<{ ok: true }> { return this.call('domain.snapshotDelete', { params: { name, snapshot } }); }
  dump(name: string, body: MethodInput<'domain.dump'>['body']): Promise<MethodResult<'domain.dump'>> { return this.call('domain.dump', { params: { name }, body }); }
  // networks (docs/networks.md)
  networkList(opts: { all?: boolean } = {}): Promise<MethodResult<'network.list'>> { return this.call('network.list', { query: opts.all ? { all: true } : {} }); }
  networkDefine(definition: unknown): Promise<MethodResult<'network.define'>> { return this.call('network.define', { body: { definition } }); }
  networkInfo(network: string): Promise<MethodResult<'network.info'>> { return this.call('network.info', { params: { network } }); }
  networkStart(network: string): Promise<MethodResult<'network.start'>> { return this.call('network.start', { params: { network } }); }
  networkDestroy(network: string, force = false): Promise<MethodResult<'network.destroy'>> { return this.call('network.destroy', { params: { network }, body: force ? { force: true } : {} }); }
  networkUndefine(network: string): Promise<{ ok: true }> { return this.call('network.undefine', { params: { network } }); }
  networkSetAutostart(network: string, enabled: boolean): Promise<MethodResult<'network.setAutostart'>> { return this.call('network.setAutostart', { params: { network }, body: { enabled } }); }
  networkLeases(network: string): Promise<MethodResult<'network.leases'>> { return this.call('network.leases', { params: { network } }); }
  domainAddresses(name: string): Promise<MethodResult<'network.domainAddresses'>> { return this.call('network.domainAddresses', { params: { name } }); }
  // pools and volumes (docs/pools.md)
  poolList(opts: { all?: boolean } = {}): Promise<PoolList> { return this.call('pool.list', { query: opts.all ? { all: true } : {} }); }
  poolDefine(body: PoolDefineBody): Promise<PoolInfo> { return this.call('pool.define', { body }); }
  poolInfo(pool: string): Promise<PoolInfo> { return this.call('pool.info', { params: { pool } }); }
  poolRefresh(pool: string): Promise<PoolInfo> { return this.call('pool.refresh', { params: { pool } }); }
  poolUndefine(pool: string): Promise<{ ok: true }> { return this.call('pool.undefine', { params: { pool } }); }
  volumeList(pool: string): Promise<VolumeList> { return this.call('volume.list', { params: { pool } }); }
  volumeCreate(pool: string, body: VolumeCreateBody): Promise<VolumeInfo> { return this.call('volume.create', { params: { pool }, body }); }
  volumeInfo(pool: string, volume: string): Promise<VolumeInfo> { return this.call('volume.info', { params: { pool, volume } }); }
  volumeClone(pool: string, volume: string, name: string): Promise<VolumeInfo> { return this.call('volume.clone', { params: { pool, volume }, body: { name } }); }
  volumeResize(pool: string, volume: string, capacity: number, opts: { shrink?: boolean } = {}): Promise<VolumeInfo> {
    return this.call('volume.resize', { params: { pool, volume }, body: { capacity, ...opts } });
  }
  volumeDelete(pool: string, volume: string): Promise<{ ok: true }> { return this.call('volume.delete', { params: { pool, volume } }); }
}
