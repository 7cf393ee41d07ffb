/**
 * The method table: every operation of the manager's API, with its HTTP route and schemas.
 * The daemon registers its routes from this table, the client calls through it, and the
 * OpenAPI document is generated from it. Method names are `noun.verb` and append-only.
 */
import {
  AutostartBody, ConsoleLog, DaemonInfo, DefineBody, DefinitionQuery, DefinitionText, DomainInfo, DomainList,
  DomainStateInfo, DomainSummary, HostShutdownBody, HostShutdownResult, ListQuery, MonitorBody, MonitorResult,
  NameParams, Ok, ShutdownBody, ShutdownResult, StartBody, UndefineQuery, DomainStates, type DomainState, type Schema,
} from './schemas.js';
import type { AccessClass } from './access.js';
import { PoolMethods } from './pools.js';
import { NetworkMethods } from './networks.js';
import { HostResourceMethods } from './host-resources.js';
import { GuestStateMethods } from './guest-state.js';
import { DeviceMethods } from './devices.js';
import { ObservabilityMethods } from './observability.js';
import { WebMethods } from './web.js';

export type HttpVerb = 'GET' | 'POST' | 'PUT' | 'DELETE';

export interface MethodSpec {
  readonly http: HttpVerb;
  /** Route with `:name` placeholders (find-my-way syntax). */
  readonly path: string;
  readonly summary: string;
  readonly params?: Schema;
  readonly query?: Schema;
  readonly body?: Schema;
  readonly result: Schema;
  /** HTTP status of a success. */
  readonly status?: 200 | 201;
  /**
   * The domain states the method accepts: a list is checked before the handler runs (and again
   * by the manager under the domain's lock) with `assertStateAllowed`; `'any'` acts on one
   * domain whatever its state; `null` does not act on one domain.
   */
  readonly states: StatePrecondition;
  /** States also accepted when the request says `force=true` (the manager first stops the domain). */
  readonly forceStates?: readonly DomainState[];
  /** Who may call it (`src/api/access.ts`); reads change nothing and offer `--json` in the CLI. */
  readonly access: AccessClass;
  /** A long operation that reports progress (seconds to minutes: guest shutdown, copying data). */
  readonly long: boolean;
}

/** See `MethodSpec.states`. */
export type StatePrecondition = readonly DomainState[] | 'any' | null;

const Active = ['running', 'paused'] as const;
const Stopped = ['shutoff', 'crashed'] as const;

export const Methods = {
  'daemon.info': { http: 'GET', path: '/', summary: 'Daemon version, directories, store revision', result: DaemonInfo, states: null, access: 'read', long: false },
  'domain.list': { http: 'GET', path: '/domains', summary: 'List domains (running only unless all=true)', query: ListQuery, result: DomainList, states: null, access: 'read', long: false },
  'domain.define': { http: 'POST', path: '/domains', summary: 'Define a domain from a YAML or JSON definition', body: DefineBody, result: DomainInfo, status: 201, states: null, access: 'write', long: false },
  'domain.info': { http: 'GET', path: '/domains/:name', summary: 'Domain information', params: NameParams, result: DomainInfo, states: 'any', access: 'read', long: false },
  'domain.state': { http: 'GET', path: '/domains/:name/state', summary: 'Domain state and reason', params: NameParams, result: DomainStateInfo, states: 'any', access: 'read', long: false },
  'domain.undefine': { http: 'DELETE', path: '/domains/:name', summary: 'Remove a domain (refused while it runs unless force=true)', params: NameParams, query: UndefineQuery, result: Ok, states: Stopped, forceStates: DomainStates, access: 'write', long: false },
  'domain.start': { http: 'POST', path: '/domains/:name/start', summary: 'Start a domain', params: NameParams, body: StartBody, result: DomainInfo, states: Stopped, access: 'write', long: false },
  'domain.shutdown': { http: 'POST', path: '/domains/:name/shutdown', summary: 'ACPI power button, then forced off after the timeout', params: NameParams, body: ShutdownBody, result: ShutdownResult, states: Active, access: 'write', long: true },
  'domain.destroy': { http: 'POST', path: '/domains/:name/destroy', summary: 'Stop a domain at once', params: NameParams, result: DomainStateInfo, states: Active, access: 'write', long: false },
  'domain.reboot': { http: 'POST', path: '/domains/:name/reboot', summary: 'Ask the guest to reboot (ACPI)', params: NameParams, result: Ok, states: ['running'], access: 'write', long: false },
  'domain.reset': { http: 'POST', path: '/domains/:name/reset', summary: 'Hard reset, like the reset button', params: NameParams, result: Ok, states: Active, access: 'write', long: false },
  'domain.suspend': { http: 'POST', path: '/domains/:name/suspend', summary: 'Pause the guest CPUs', params: NameParams, result: DomainStateInfo, states: ['running'], access: 'write', long: false },
  'domain.resume': { http: 'POST', path: '/domains/:name/resume', summary: 'Resume paused guest CPUs', params: NameParams, result: DomainStateInfo, states: ['paused'], access: 'write', long: false },
  'domain.setAutostart': { http: 'PUT', path: '/domains/:name/autostart', summary: 'Start the domain when the host boots', params: NameParams, body: AutostartBody, result: DomainSummary, states: 'any', access: 'write', long: false },
  'domain.getDefinition': { http: 'GET', path: '/domains/:name/definition', summary: 'The normalized definition', params: NameParams, query: DefinitionQuery, result: DefinitionText, states: 'any', access: 'read', long: false },
  'domain.updateDefinition': { http: 'PUT', path: '/domains/:name/definition', summary: 'Replace the definition (fields that cannot change while running are refused)', params: NameParams, body: DefineBody, result: DomainInfo, states: 'any', access: 'write', long: false },
  'domain.consoleLog': { http: 'GET', path: '/domains/:name/console/log', summary: 'The last 256 KiB of serial console output', params: NameParams, result: ConsoleLog, states: 'any', access: 'read', long: false },
  'domain.monitorCommand': { http: 'POST', path: '/domains/:name/monitor', summary: 'Raw QMP or HMP command (taints the domain)', params: NameParams, body: MonitorBody, result: MonitorResult, states: Active, access: 'admin', long: false },
  'host.shutdown': { http: 'POST', path: '/host/shutdown', summary: 'Stop every running guest per its on_host_shutdown policy, in parallel', body: HostShutdownBody, result: HostShutdownResult, states: null, access: 'admin', long: true },
  ...PoolMethods,
  ...NetworkMethods,
  ...HostResourceMethods,
  ...GuestStateMethods,
  ...DeviceMethods,
  ...ObservabilityMethods,
  ...WebMethods,
} as const satisfies Record<string, MethodSpec>;

export type MethodName = keyof typeof Methods;

/**
 * Streaming endpoints outside the request/response table (docs/api.md, "Streams").
 * - `GET /events?since=SEQ&follow=BOOL`: domain events, replayed from the store after SEQ, then
 *   followed live. As server-sent events: `event: cursor` first, then one `DomainEvent` per
 *   `data:` line with `id: SEQ`. Upgraded to a WebSocket: one JSON text message each,
 *   `{ "cursor": SEQ }` first, then one `DomainEvent` per message.
 * - `GET /snoop`: server-sent events, one `SnoopRecord` per store operation.
 * - `GET /domains/:name/console?mode=read|write&history=BOOL` upgraded to a WebSocket: the
 *   serial console's bytes as binary messages both ways; `history=true` first sends what
 *   the daemon kept of the console's output.
 */
export const StreamPaths = {
  events: '/events',
  snoop: '/snoop',
  console: '/domains/:name/console',
} as const;

/** How the daemon closes a stream WebSocket (1000-1011 are the protocol's own codes). */
export const StreamCloseCodes = {
  /** The stream is complete: an event replay with `follow=false`, a console that closed. */
  done: 1000,
  /** The daemon is stopping; reconnect (and resume from the cursor) when it is back. */
  goingAway: 1001,
  /** A typed error ended the stream; its last message is `{ "error": { code, message, data } }`. */
  error: 4000,
  /** The reader let more than the stream's limit (1 MiB) wait unsent; reconnect and resume. */
  slowReader: 4001,
} as const;

/** Fill `:name` placeholders of a route. */
export function routePath(path: string, params: Record<string, string> = {}): string {
  return path.replace(/:([A-Za-z]+)/g, (_m, key: string) => {
    const v = params[key];
    if (v === undefined) throw new TypeError(`missing route parameter ${key}`);
    return encodeURIComponent(v);
  });
}
