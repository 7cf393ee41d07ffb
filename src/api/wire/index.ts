/**
 * GENERATED from the method table by src/api/wire-gen.ts: do not edit. After changing the
 * table run `VIRTKIT_REGENERATE=1 npx vitest run src/api/contract-docs.test.ts`.
 *
 * What a client needs to make a call, as plain literals: no TypeBox, so a client command
 * starts without loading the schemas (docs/performance.md).
 */
import type { MethodName } from '../methods.js';

// The contract's other plain-value modules a client needs (they import no schema).
export { codeForStatus, httpStatusOf } from '../http-status.js';
export { managerDirs } from '../paths.js';
// The RPC channel's frames and constants (hand-written: they do not come from the table).
export * from './rpc.js';

export interface WireRoute {
  readonly http: 'GET' | 'POST' | 'PUT' | 'DELETE';
  readonly path: string;
  /** The method takes a JSON body. */
  readonly body?: true;
}

export const Routes: Readonly<Record<MethodName, WireRoute>> = {
  'daemon.info': { http: 'GET', path: '/' },
  'domain.list': { http: 'GET', path: '/domains' },
  'domain.define': { http: 'POST', path: '/domains', body: true },
  'domain.info': { http: 'GET', path: '/domains/:name' },
  'domain.state': { http: 'GET', path: '/domains/:name/state' },
  'domain.undefine': { http: 'DELETE', path: '/domains/:name' },
  'domain.start': { http: 'POST', path: '/domains/:name/start', body: true },
  'domain.shutdown': { http: 'POST', path: '/domains/:name/shutdown', body: true },
  'domain.destroy': { http: 'POST', path: '/domains/:name/destroy' },
  'domain.reboot': { http: 'POST', path: '/domains/:name/reboot' },
  'domain.reset': { http: 'POST', path: '/domains/:name/reset' },
  'domain.suspend': { http: 'POST', path: '/domains/:name/suspend' },
  'domain.resume': { http: 'POST', path: '/domains/:name/resume' },
  'domain.setAutostart': { http: 'PUT', path: '/domains/:name/autostart', body: true },
  'domain.getDefinition': { http: 'GET', path: '/domains/:name/definition' },
  'domain.updateDefinition': { http: 'PUT', path: '/domains/:name/definition', body: true },
  'domain.consoleLog': { http: 'GET', path: '/domains/:name/console/log' },
  'domain.monitorCommand': { http: 'POST', path: '/domains/:name/monitor', body: true },
  'host.shutdown': { http: 'POST', path: '/host/shutdown', body: true },
  'pool.list': { http: 'GET', path: '/pools' },
  'pool.define': { http: 'POST', path: '/pools', body: true },
  'pool.info': { http: 'GET', path: '/pools/:pool' },
  'pool.refresh': { http: 'POST', path: '/pools/:pool/refresh' },
  'pool.undefine': { http: 'DELETE', path: '/pools/:pool' },
  'volume.list': { http: 'GET', path: '/pools/:pool/volumes' },
  'volume.create': { http: 'POST', path: '/pools/:pool/volumes', body: true },
  'volume.info': { http: 'GET', path: '/pools/:pool/volumes/:volume' },
  'volume.clone': { http: 'POST', path: '/pools/:pool/volumes/:volume/clone', body: true },
  'volume.resize': { http: 'POST', path: '/pools/:pool/volumes/:volume/resize', body: true },
  'volume.delete': { http: 'DELETE', path: '/pools/:pool/volumes/:volume' },
  'network.list': { http: 'GET', path: '/networks' },
  'network.define': { http: 'POST', path: '/networks', body: true },
  'network.info': { http: 'GET', path: '/networks/:network' },
  'network.start': { http: 'POST', path: '/networks/:network/start' },
  'network.destroy': { http: 'POST', path: '/networks/:network/destroy', body: true },
  'network.undefine': { http: 'DELETE', path: '/networks/:network' },
  'network.setAutostart': { http: 'PUT', path: '/networks/:network/autostart', body: true },
  'network.leases': { http: 'GET', path: '/networks/:network/leases' },
  'network.domainAddresses': { http: 'GET', path: '/domains/:name/interface-addresses' },
  'domain.resourceLimits': { http: 'GET', path: '/domains/:name/limits' },
  'domain.setResourceLimits': { http: 'PUT', path: '/domains/:name/limits', body: true },
  'domain.vncDisplay': { http: 'GET', path: '/domains/:name/vnc' },
  'domain.setVncPassword': { http: 'POST', path: '/domains/:name/vnc/password' },
  'domain.screenshot': { http: 'GET', path: '/domains/:name/screenshot' },
  'domain.sendKey': { http: 'POST', path: '/domains/:name/send-key', body: true },
  'host.domainCapabilities': { http: 'GET', path: '/host/domcapabilities' },
  'domain.save': { http: 'POST', path: '/domains/:name/save', body: true },
  'domain.restore': { http: 'POST', path: '/domains/restore', body: true },
  'domain.managedSave': { http: 'POST', path: '/domains/:name/managedsave' },
  'domain.managedSaveRemove': { http: 'DELETE', path: '/domains/:name/managedsave' },
  'domain.jobInfo': { http: 'GET', path: '/domains/:name/job' },
  'domain.snapshotCreate': { http: 'POST', path: '/domains/:name/snapshots', body: true },
  'domain.snapshotList': { http: 'GET', path: '/domains/:name/snapshots' },
  'domain.snapshotInfo': { http: 'GET', path: '/domains/:name/snapshots/:snapshot' },
  'domain.snapshotRevert': { http: 'POST', path: '/domains/:name/snapshots/:snapshot/revert' },
  'domain.snapshotDelete': { http: 'DELETE', path: '/domains/:name/snapshots/:snapshot' },
  'domain.dump': { http: 'POST', path: '/domains/:name/dump', body: true },
  'domain.attachDisk': { http: 'POST', path: '/domains/:name/disks', body: true },
  'domain.detachDisk': { http: 'DELETE', path: '/domains/:name/disks/:device' },
  'domain.blockList': { http: 'GET', path: '/domains/:name/disks' },
  'domain.attachInterface': { http: 'POST', path: '/domains/:name/interfaces', body: true },
  'domain.detachInterface': { http: 'DELETE', path: '/domains/:name/interfaces/:device' },
  'domain.interfaceList': { http: 'GET', path: '/domains/:name/interfaces' },
  'domain.setMemory': { http: 'PUT', path: '/domains/:name/memory', body: true },
  'domain.setMaxMemory': { http: 'PUT', path: '/domains/:name/maxmemory', body: true },
  'domain.memoryStats': { http: 'GET', path: '/domains/:name/memory/stats' },
  'domain.setVcpus': { http: 'PUT', path: '/domains/:name/vcpus', body: true },
  'domain.vcpuInfo': { http: 'GET', path: '/domains/:name/vcpus' },
  'domain.traceEvents': { http: 'GET', path: '/domains/:name/trace/events' },
  'domain.stats': { http: 'GET', path: '/domains/:name/stats' },
  'domain.statsAll': { http: 'GET', path: '/stats' },
  'host.info': { http: 'GET', path: '/host' },
};

export const StreamPaths = {
  events: '/events',
  snoop: '/snoop',
  console: '/domains/:name/console'
} as const;

export const StreamCloseCodes = {
  done: 1000,
  goingAway: 1001,
  error: 4000,
  slowReader: 4001
} as const;

export const ObservabilityPaths = {
  trace: '/domains/:name/trace',
  netdump: '/domains/:name/netdump',
  probe: '/probe',
  metrics: '/metrics'
} as const;

export const VolumeContentPath = '/pools/:pool/volumes/:volume/content';
export const VolumeInUseHeader = 'virtkit-volume-in-use';

/** Fill `:name` placeholders of a route. */
export function routePath(path: string, params: Record<string, string> = {}): string {
  return path.replace(/:([A-Za-z]+)/g, (_m, key: string) => {
    const v = params[key];
    if (v === undefined) throw new TypeError(`missing route parameter ${key}`);
    return encodeURIComponent(v);
  });
}
