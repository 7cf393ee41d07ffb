/**
 * Resource limits, screens and keys, domain capabilities: schemas and method table entries
 * (merged into `Methods`). docs/resource-limits.md, docs/screens.md and docs/firmware.md
 * describe the behaviour; the CLI verbs are virsh's (schedinfo, memtune, vncdisplay,
 * screenshot, send-key, domcapabilities).
 *
 * `live` and `config` say which definition a limit change applies to, as for hot-plug: the
 * running guest's cgroup and live definition (live), the saved definition (config). Neither
 * given: both for a running guest, the saved one for a stopped guest. `live` on a stopped
 * guest is refused.
 */
import { Type, type Static } from '@sinclair/typebox';
import type { MethodSpec } from './methods.js';
import { NameParams, Ok } from './schemas.js';

const strict = { additionalProperties: false } as const;
const Active = ['running', 'paused'] as const;

/** null removes a limit (back to the host's default: no limit). */
const Nullable = <T extends ReturnType<typeof Type.Integer>>(schema: T) => Type.Optional(Type.Union([schema, Type.Null()]));

export const ResourceLimitsBody = Type.Object({
  cpu_shares: Nullable(Type.Integer({ minimum: 2, maximum: 262144, description: 'relative CPU weight (cgroup cpu.shares); null: the default' })),
  cpu_quota: Nullable(Type.Integer({ minimum: 1, maximum: 25500, description: 'percent of one host CPU; null: unlimited' })),
  memory_limit: Nullable(Type.Integer({ minimum: 16 * 1024 * 1024, maximum: 16 * 1024 ** 4, description: 'bytes; null: unlimited' })),
  live: Type.Optional(Type.Boolean({ description: 'change the running guest' })),
  config: Type.Optional(Type.Boolean({ description: 'change the saved definition (the next start)' })),
}, strict);
export type ResourceLimitsBody = Static<typeof ResourceLimitsBody>;

export const ResourceLimitsQuery = Type.Object({
  config: Type.Optional(Type.Boolean({ description: 'the saved definition\'s limits instead of the running guest\'s' })),
}, strict);
export type ResourceLimitsQuery = Static<typeof ResourceLimitsQuery>;

const Limits = {
  cpu_shares: Type.Optional(Type.Integer()),
  cpu_quota: Type.Optional(Type.Integer()),
  memory_limit: Type.Optional(Type.Integer()),
};

export const ResourceLimitsResult = Type.Object({
  ...Limits,
  /** Where the values come from: the running guest's cgroup, or the saved definition. */
  source: Type.Union([Type.Literal('live'), Type.Literal('config')]),
  /** The running guest's cgroup (absent: stopped, or running without one). */
  cgroup: Type.Optional(Type.Object({ version: Type.Union([Type.Literal(1), Type.Literal(2)]), dirs: Type.Array(Type.String()) })),
  /** What a change applied to. */
  changed: Type.Optional(Type.Object({ live: Type.Boolean(), config: Type.Boolean() })),
});
export type ResourceLimitsResult = Static<typeof ResourceLimitsResult>;

export const VncDisplayResult = Type.Object({
  /** The VNC server's unix socket. */
  socket: Type.String(),
  /** The guest asks VNC clients for a password (vnc_password). */
  passwordRequired: Type.Boolean(),
});
export type VncDisplayResult = Static<typeof VncDisplayResult>;

export const VncPasswordResult = Type.Object({
  socket: Type.String(),
  /** The new password, shown once: it is kept nowhere but in QEMU. */
  password: Type.String(),
});
export type VncPasswordResult = Static<typeof VncPasswordResult>;

export const ScreenshotResult = Type.Object({
  format: Type.Literal('png'),
  width: Type.Integer(),
  height: Type.Integer(),
  /** The PNG, base64. */
  data: Type.String(),
});
export type ScreenshotResult = Static<typeof ScreenshotResult>;

export const SendKeyBody = Type.Object({
  /** Pressed together, then released: qcodes (`ctrl`, `a`), linux names (`KEY_LEFTCTRL`) or combinations (`ctrl-alt-delete`). */
  keys: Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { minItems: 1, maxItems: 16 }),
  /** How long the keys are held, in ms (QEMU's default: 100). */
  holdtime: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
}, strict);
export type SendKeyBody = Static<typeof SendKeyBody>;

const StringList = Type.Array(Type.String());

export const DomainCapabilitiesResult = Type.Object({
  binary: Type.String(),
  version: Type.String(),
  accelerators: StringList,
  kvm: Type.Object({ usable: Type.Boolean(), reason: Type.String() }),
  machines: Type.Array(Type.Object({
    name: Type.String(), alias: Type.Optional(Type.String()), isDefault: Type.Boolean(), maxCpus: Type.Integer(), deprecated: Type.Boolean(),
  })),
  cpuModels: StringList,
  firmware: Type.Object({
    kinds: StringList,
    images: Type.Array(Type.Object({
      name: Type.String(), description: Type.String(), interfaces: StringList, device: Type.String(),
      executable: Type.Optional(Type.String()), nvramTemplate: Type.Optional(Type.String()), features: StringList, machines: StringList,
    })),
  }),
  devices: Type.Object({ disk: StringList, nic: StringList, video: StringList, balloon: StringList, filesystem: StringList, controller: StringList }),
  definition: Type.Object({ video: StringList, filesystemDrivers: StringList }),
});
export type DomainCapabilitiesResult = Static<typeof DomainCapabilitiesResult>;

export const HostResourceMethods = {
  'domain.resourceLimits': { http: 'GET', path: '/domains/:name/limits', summary: 'CPU and memory limits: the running guest\'s cgroup, or the saved definition\'s', params: NameParams, query: ResourceLimitsQuery, result: ResourceLimitsResult, states: 'any', access: 'read', long: false },
  'domain.setResourceLimits': { http: 'PUT', path: '/domains/:name/limits', summary: 'Change cpu_shares, cpu_quota, memory_limit (the running guest\'s cgroup and/or the saved definition)', params: NameParams, body: ResourceLimitsBody, result: ResourceLimitsResult, states: 'any', access: 'write', long: false },
  'domain.vncDisplay': { http: 'GET', path: '/domains/:name/vnc', summary: 'The VNC server\'s unix socket', params: NameParams, result: VncDisplayResult, states: Active, access: 'read', long: false },
  'domain.setVncPassword': { http: 'POST', path: '/domains/:name/vnc/password', summary: 'Set a new random VNC password over QMP (needs vnc_password); returned once', params: NameParams, result: VncPasswordResult, states: Active, access: 'write', long: false },
  'domain.screenshot': { http: 'GET', path: '/domains/:name/screenshot', summary: 'The screen as PNG (QMP screendump)', params: NameParams, result: ScreenshotResult, states: Active, access: 'read', long: false },
  'domain.sendKey': { http: 'POST', path: '/domains/:name/send-key', summary: 'Press keys together, then release them', params: NameParams, body: SendKeyBody, result: Ok, states: Active, access: 'write', long: false },
  'host.domainCapabilities': { http: 'GET', path: '/host/domcapabilities', summary: 'What definitions can ask of this host: machines, CPU models, firmware, device models', result: DomainCapabilitiesResult, states: null, access: 'read', long: false },
} as const satisfies Record<string, MethodSpec>;
