/**
 * The method table: every operation of the manager's API, with its HTTP route and schemas.
 * The daemon registers its routes from this table, the client calls through it, and the
 * OpenAPI document is generated from it. Method names are `noun.verb` and append-only.
 */
import {
  AutostartBody, ConsoleLog, DaemonInfo, DefineBody, DefinitionQuery, DefinitionText, DomainInfo, DomainList,
  DomainStateInfo, DomainSummary, HostShutdownBody, HostShutdownResult, ListQuery, MonitorBody, MonitorResult,
  NameParams, Ok, ShutdownBody, ShutdownResult, StartBody, UndefineQuery, type Schema,
} from './schemas.js';
import { PoolMethods } from './pools.js';

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
  /** Reads change nothing; the CLI offers `--json` for them. */
  readonly read?: boolean;
}

export const Methods = {
  'daemon.info': { http: 'GET', path: '/', summary: 'Daemon version, directories, store revision', result: DaemonInfo, read: true },
  'domain.list': { http: 'GET', path: '/domains', summary: 'List domains (running only unless all=true)', query: ListQuery, result: DomainList, read: true },
  'domain.define': { http: 'POST', path: '/domains', summary: 'Define a domain from a YAML or JSON definition', body: DefineBody, result: DomainInfo, status: 201 },
  'domain.info': { http: 'GET', path: '/domains/:name', summary: 'Domain information', params: NameParams, result: DomainInfo, read: true },
  'domain.state': { http: 'GET', path: '/domains/:name/state', summary: 'Domain state and reason', params: NameParams, result: DomainStateInfo, read: true },
  'domain.undefine': { http: 'DELETE', path: '/domains/:name', summary: 'Remove a domain (refused while it runs unless force=true)', params: NameParams, query: UndefineQuery, result: Ok },
  'domain.start': { http: 'POST', path: '/domains/:name/start', summary: 'Start a domain', params: NameParams, body: StartBody, result: DomainInfo },
  'domain.shutdown': { http: 'POST', path: '/domains/:name/shutdown', summary: 'ACPI power button, then forced off after the timeout', params: NameParams, body: ShutdownBody, result: ShutdownResult },
  'domain.destroy': { http: 'POST', path: '/domains/:name/destroy', summary: 'Stop a domain at once', params: NameParams, result: DomainStateInfo },
  'domain.reboot': { http: 'POST', path: '/domains/:name/reboot', summary: 'Ask the guest to reboot (ACPI)', params: NameParams, result: Ok },
  'domain.reset': { http: 'POST', path: '/domains/:name/reset', summary: 'Hard reset, like the reset button', params: NameParams, result: Ok },
  'domain.suspend': { http: 'POST', path: '/domains/:name/suspend', summary: 'Pause the guest CPUs', params: NameParams, result: DomainStateInfo },
  'domain.resume': { http: 'POST', path: '/domains/:name/resume', summary: 'Resume paused guest CPUs', params: NameParams, result: DomainStateInfo },
  'domain.setAutostart': { http: 'PUT', path: '/domains/:name/autostart', summary: 'Start the domain when the host boots', params: NameParams, body: AutostartBody, result: DomainSummary },
  'domain.getDefinition': { http: 'GET', path: '/domains/:name/definition', summary: 'The normalized definition', params: NameParams, query: DefinitionQuery, result: DefinitionText, read: true },
  'domain.updateDefinition': { http: 'PUT', path: '/domains/:name/definition', summary: 'Replace the definition (fields that cannot change while running are refused)', params: NameParams, body: DefineBody, result: DomainInfo },
  'domain.consoleLog': { http: 'GET', path: '/domains/:name/console/log', summary: 'The last 256 KiB of serial console output', params: NameParams, result: ConsoleLog, read: true },
  'domain.monitorCommand': { http: 'POST', path: '/domains/:name/monitor', summary: 'Raw QMP or HMP command (taints the domain)', params: NameParams, body: MonitorBody, result: MonitorResult },
  'host.shutdown': { http: 'POST', path: '/host/shutdown', summary: 'Stop every running guest per its on_host_shutdown policy, in parallel', body: HostShutdownBody, result: HostShutdownResult },
  ...PoolMethods,
} as const satisfies Record<string, MethodSpec>;

export type MethodName = keyof typeof Methods;

/**
 * Streaming endpoints outside the request/response table.
 * - `GET /events?since=SEQ&follow=BOOL`: server-sent events, one `DomainEvent` per `data:` line,
 *   with `id: SEQ`; replays everything after SEQ from the store, then follows live.
 * - `GET /snoop`: server-sent events, one `SnoopRecord` per store operation.
 * - `GET /domains/:name/console?mode=read|write` with `Upgrade: virtkit-console`: raw byte stream.
 */
export const StreamPaths = {
  events: '/events',
  snoop: '/snoop',
  console: '/domains/:name/console',
} as const;

export const ConsoleUpgradeProtocol = 'virtkit-console';

/** Fill `:name` placeholders of a route. */
export function routePath(path: string, params: Record<string, string> = {}): string {
  return path.replace(/:([A-Za-z]+)/g, (_m, key: string) => {
    const v = params[key];
    if (v === undefined) throw new TypeError(`missing route parameter ${key}`);
    return encodeURIComponent(v);
  });
}
