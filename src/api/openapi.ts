/**
 * The OpenAPI 3.1 document, generated from the method table so it cannot drift from the routes.
 * Served by the daemon at `/openapi.json`.
 */
import { Methods, StreamPaths, type MethodSpec } from './methods.js';
import { observabilityStreams } from './observability.js';
import { DomainEvent, ErrorBody, EventsQuery, SnoopRecord, type Schema } from './schemas.js';

export const ApiVersion = '0.1.0';

function toOpenApiPath(path: string): string {
  return path.replace(/:([A-Za-z]+)/g, '{$1}');
}

/** TypeBox schemas carry symbol keys and `$id`-free JSON schema; a JSON round trip keeps the JSON part. */
function plain(schema: Schema): unknown {
  return JSON.parse(JSON.stringify(schema)) as unknown;
}

function parametersOf(spec: Pick<MethodSpec, 'params' | 'query'>): unknown[] {
  const out: unknown[] = [];
  for (const [where, schema] of [['path', spec.params], ['query', spec.query]] as const) {
    if (!schema) continue;
    const props = (schema as { properties?: Record<string, Schema> }).properties ?? {};
    const required = new Set((schema as { required?: string[] }).required ?? []);
    for (const [name, s] of Object.entries(props)) {
      out.push({ name, in: where, required: where === 'path' || required.has(name), schema: plain(s) });
    }
  }
  return out;
}

const errorResponse = { description: 'typed error', content: { 'application/json': { schema: plain(ErrorBody) } } };

export function buildOpenApi(): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const [name, spec] of Object.entries(Methods) as [string, MethodSpec][]) {
    const p = (paths[toOpenApiPath(spec.path)] ??= {});
    p[spec.http.toLowerCase()] = {
      operationId: name,
      summary: spec.summary,
      // The contract beyond the schemas (docs/api.md, "Preconditions, access classes, long operations").
      'x-virtkit-states': spec.states,
      'x-virtkit-access': spec.access,
      'x-virtkit-long': spec.long,
      parameters: parametersOf(spec),
      ...(spec.body ? { requestBody: { required: true, content: { 'application/json': { schema: plain(spec.body) } } } } : {}),
      responses: {
        [String(spec.status ?? 200)]: { description: 'success', content: { 'application/json': { schema: plain(spec.result) } } },
        default: errorResponse,
      },
    };
  }
  paths[StreamPaths.events] = {
    get: {
      operationId: 'events.stream',
      summary: 'Server-sent events, or a WebSocket with one JSON text message each: DomainEvents replayed from the store after `since`, then followed',
      parameters: parametersOf({ query: EventsQuery }),
      responses: { 200: { description: 'event stream', content: { 'text/event-stream': { schema: plain(DomainEvent) } } }, default: errorResponse },
    },
  };
  paths[StreamPaths.snoop] = {
    get: {
      operationId: 'store.snoop',
      summary: 'Server-sent events: one SnoopRecord per store operation',
      responses: { 200: { description: 'operation stream', content: { 'text/event-stream': { schema: plain(SnoopRecord) } } }, default: errorResponse },
    },
  };
  paths[toOpenApiPath(StreamPaths.console)] = {
    get: {
      operationId: 'domain.console',
      summary: 'Serial console over a WebSocket (binary messages both ways); mode=read|write, history=true replays the kept output first',
      parameters: [{ name: 'name', in: 'path', required: true, schema: { type: 'string' } },
        { name: 'mode', in: 'query', required: false, schema: { enum: ['read', 'write'] } },
        { name: 'history', in: 'query', required: false, schema: { type: 'boolean' } }],
      responses: { 101: { description: 'WebSocket: the console bytes follow' }, 426: { description: 'a plain GET: the console would open as a WebSocket' }, default: errorResponse },
    },
  };
  Object.assign(paths, observabilityStreams(errorResponse));
  return {
    openapi: '3.1.0',
    info: { title: 'virtkit manager API', version: ApiVersion, description: 'REST + JSON over the unix socket DIR/virtkit.sock' },
    paths,
  };
}
