/**
 * The data shapes of the manager's API, as TypeBox schemas: the same values validate requests
 * in the daemon, type the client, and become the OpenAPI document. Unknown fields in request
 * bodies are rejected (`additionalProperties: false`).
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';

const strict = { additionalProperties: false } as const;

export const DomainStates = ['running', 'paused', 'shutoff', 'crashed'] as const;
export type DomainState = (typeof DomainStates)[number];

/** Why a domain is not running: how its last run ended. */
export const StopReasons = ['shutdown', 'destroyed', 'crashed', 'failed', 'saved'] as const;
export type StopReason = (typeof StopReasons)[number];

export const HostShutdownPolicies = ['shutdown', 'destroy', 'none'] as const;

export const DomainName = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' });

export const NameParams = Type.Object({ name: DomainName }, strict);
export type NameParams = Static<typeof NameParams>;

export const DomainStateSchema = Type.Union(DomainStates.map((s) => Type.Literal(s)));
export const StopReasonSchema = Type.Union(StopReasons.map((s) => Type.Literal(s)));

export const DomainSummary = Type.Object({
  name: Type.String(),
  uuid: Type.String(),
  state: DomainStateSchema,
  autostart: Type.Boolean(),
  /** Why the guest is tainted (custom-argv, custom-env, custom-monitor), empty when it is not. */
  tainted: Type.Array(Type.String()),
  /** True while the daemon has lost the guest's monitor (QMP) and reconnects: monitor calls fail meanwhile. */
  degraded: Type.Optional(Type.Boolean()),
});
export type DomainSummary = Static<typeof DomainSummary>;

export const DomainInfo = Type.Object({
  name: Type.String(),
  uuid: Type.String(),
  state: DomainStateSchema,
  /** How the last run ended; present while the domain is not running. */
  reason: Type.Optional(StopReasonSchema),
  /** QEMU's pid while it runs. */
  pid: Type.Optional(Type.Integer()),
  /** Guest memory in bytes. */
  memory: Type.Integer(),
  /** vCPUs present: while it runs, the running guest's count (setvcpus --live changes it). */
  vcpus: Type.Integer(),
  /** The most vCPUs it may have (maxvcpus), when CPU hot-plug is set up. */
  maxVcpus: Type.Optional(Type.Integer()),
  autostart: Type.Boolean(),
  /** Why the guest is tainted (custom-argv, custom-env, custom-monitor: docs/manager.md), empty when it is not. */
  tainted: Type.Array(Type.String()),
  /** True while the daemon has lost the guest's monitor (QMP) and reconnects: monitor calls fail meanwhile. */
  degraded: Type.Optional(Type.Boolean()),
  accel: Type.Optional(Type.String()),
  runDir: Type.Optional(Type.String()),
  /** While it runs: the saved definition (what the next start uses) is not the one it runs with (`dumpdef --live`). */
  definitionDiffers: Type.Optional(Type.Boolean()),
  /** A managed save exists: the next start resumes from it (docs/save-restore.md). */
  managedSave: Type.Optional(Type.Boolean()),
});
export type DomainInfo = Static<typeof DomainInfo>;

export const DomainStateInfo = Type.Object({
  state: DomainStateSchema,
  reason: Type.Optional(StopReasonSchema),
});
export type DomainStateInfo = Static<typeof DomainStateInfo>;

export const ListQuery = Type.Object({
  all: Type.Optional(Type.Boolean({ description: 'include domains that are not running' })),
}, strict);
export type ListQuery = Static<typeof ListQuery>;

export const DomainList = Type.Object({ domains: Type.Array(DomainSummary) });
export type DomainList = Static<typeof DomainList>;

export const DefinitionFormat = Type.Union([Type.Literal('yaml'), Type.Literal('json')]);
export type DefinitionFormat = Static<typeof DefinitionFormat>;

export const DefineBody = Type.Object({
  /** The definition document, YAML or JSON text. */
  text: Type.String({ maxLength: 256 * 1024 }),
  format: Type.Optional(DefinitionFormat),
  /** Directory that relative host paths in the definition are resolved against. */
  baseDir: Type.Optional(Type.String({ maxLength: 4096 })),
}, strict);
export type DefineBody = Static<typeof DefineBody>;

export const UndefineQuery = Type.Object({
  force: Type.Optional(Type.Boolean({ description: 'destroy a running domain first' })),
}, strict);
export type UndefineQuery = Static<typeof UndefineQuery>;

export const StartBody = Type.Object({
  paused: Type.Optional(Type.Boolean()),
}, strict);
export type StartBody = Static<typeof StartBody>;

export const ShutdownBody = Type.Object({
  /** Seconds to wait after the ACPI power button before forcing the guest off. */
  timeout: Type.Optional(Type.Number({ minimum: 0, maximum: 86_400 })),
}, strict);
export type ShutdownBody = Static<typeof ShutdownBody>;

export const ShutdownResult = Type.Object({
  state: DomainStateSchema,
  /** 'clean' when the guest powered itself off, 'forced' when it was stopped after the timeout. */
  outcome: Type.Union([Type.Literal('clean'), Type.Literal('forced')]),
});
export type ShutdownResult = Static<typeof ShutdownResult>;

export const AutostartBody = Type.Object({ enabled: Type.Boolean() }, strict);
export type AutostartBody = Static<typeof AutostartBody>;

export const DefinitionQuery = Type.Object({
  format: Type.Optional(DefinitionFormat),
  live: Type.Optional(Type.Boolean({ description: 'the definition the running guest was started with, instead of the saved one' })),
}, strict);
export type DefinitionQuery = Static<typeof DefinitionQuery>;

export const DefinitionText = Type.Object({ text: Type.String(), format: DefinitionFormat });
export type DefinitionText = Static<typeof DefinitionText>;

export const ConsoleLog = Type.Object({
  /** The console output kept by the daemon (the last 256 KiB), as UTF-8 text. */
  text: Type.String(),
});
export type ConsoleLog = Static<typeof ConsoleLog>;

export const MonitorBody = Type.Union([
  Type.Object({ qmp: Type.Object({ execute: Type.String(), arguments: Type.Optional(Type.Object({})) }) }, strict),
  Type.Object({ hmp: Type.String({ maxLength: 4096 }) }, strict),
]);
export type MonitorBody = Static<typeof MonitorBody>;

export const MonitorResult = Type.Object({ result: Type.Unknown() });
export type MonitorResult = Static<typeof MonitorResult>;

export const HostShutdownBody = Type.Object({
  timeout: Type.Optional(Type.Number({ minimum: 0, maximum: 86_400 })),
}, strict);
export type HostShutdownBody = Static<typeof HostShutdownBody>;

export const HostShutdownOutcomes = ['clean', 'forced', 'destroyed', 'skipped', 'failed'] as const;
export const HostShutdownResult = Type.Object({
  domains: Type.Array(Type.Object({
    name: Type.String(),
    policy: Type.Union(HostShutdownPolicies.map((p) => Type.Literal(p))),
    outcome: Type.Union(HostShutdownOutcomes.map((o) => Type.Literal(o))),
    seconds: Type.Number(),
    error: Type.Optional(Type.String()),
  })),
});
export type HostShutdownResult = Static<typeof HostShutdownResult>;

export const DaemonInfo = Type.Object({
  version: Type.String(),
  pid: Type.Integer(),
  stateDir: Type.String(),
  runDir: Type.String(),
  bootId: Type.String(),
  revision: Type.Integer(),
  apiExtensions: Type.Array(Type.String()),
  /** The domain driver the daemon runs guests with: `qemu`, or `fake` in tests. */
  driver: Type.Optional(Type.String()),
});
export type DaemonInfo = Static<typeof DaemonInfo>;

export const EventTypes = ['defined', 'undefined', 'started', 'suspended', 'resumed', 'shutdown', 'stopped',
  'rebooted', 'reset', 'autostart', 'edited', 'tainted', 'snapshot',
  // hot-plug, memory and CPUs (docs/hotplug.md, docs/memory-cpus.md)
  'device-attached', 'device-detached', 'memory-changed', 'vcpus-changed',
  // networks (docs/networks.md): `domain` names the network, `uuid` is empty
  'net-started', 'net-stopped', 'net-lease'] as const;
export type EventType = (typeof EventTypes)[number];

export const DomainEvent = Type.Object({
  /** The store revision that recorded the event: resume with `GET /events?since=<seq>`. */
  seq: Type.Integer(),
  type: Type.Union(EventTypes.map((t) => Type.Literal(t))),
  domain: Type.String(),
  uuid: Type.String(),
  reason: Type.Optional(Type.String()),
  /** ISO 8601 time the daemon recorded the event. */
  time: Type.String(),
});
export type DomainEvent = Static<typeof DomainEvent>;

export const EventsQuery = Type.Object({
  since: Type.Optional(Type.Integer({ minimum: 0, description: 'replay events with seq greater than this' })),
  follow: Type.Optional(Type.Boolean({ description: 'keep the stream open (default true)' })),
}, strict);
export type EventsQuery = Static<typeof EventsQuery>;

/** One store operation as `virtkit snoop` shows it. */
export const SnoopRecord = Type.Object({
  time: Type.String(),
  pid: Type.Union([Type.Integer(), Type.Null()]),
  /** The client's uid (SO_PEERCRED); absent for the daemon's own operations. */
  uid: Type.Optional(Type.Integer()),
  client: Type.String(),
  tx: Type.String(),
  op: Type.String(),
  path: Type.String(),
  value: Type.Union([Type.String(), Type.Null()]),
  result: Type.String(),
});
export type SnoopRecord = Static<typeof SnoopRecord>;

export const ErrorBody = Type.Object({
  error: Type.Object({
    code: Type.String(),
    message: Type.String(),
    data: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  }),
});
export type ErrorBody = Static<typeof ErrorBody>;

export const Empty = Type.Object({}, strict);
export type Empty = Static<typeof Empty>;

export const Ok = Type.Object({ ok: Type.Literal(true) });
export type Ok = Static<typeof Ok>;

export type Schema = TSchema;
