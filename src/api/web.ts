/**
 * What the web manager's host overview asks of the daemon (docs/web.md): the hypervisor and
 * the host it runs on, in one read.
 */
import { Type, type Static } from '@sinclair/typebox';
import type { MethodSpec } from './methods.js';

export const HostInfo = Type.Object({
  hostname: Type.String(),
  /** Logical CPUs of the host. */
  cpus: Type.Integer(),
  cpuModel: Type.String(),
  memoryBytes: Type.Integer(),
  qemu: Type.Object({ binary: Type.String(), version: Type.String(), accelerators: Type.Array(Type.String()) }),
  /** The accelerator `accel: auto` picks on this host, and why (the functional KVM check's verdict). */
  accel: Type.Object({ auto: Type.String(), reason: Type.String() }),
});
export type HostInfo = Static<typeof HostInfo>;

export const WebMethods = {
  'host.info': { http: 'GET', path: '/host', summary: 'The host: CPUs, memory, QEMU version and accelerators, and the accelerator accel: auto picks and why', result: HostInfo, states: null, access: 'read', long: false },
} as const satisfies Record<string, MethodSpec>;
