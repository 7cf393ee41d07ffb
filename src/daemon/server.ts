/**
 * The HTTP side of the daemon: routes generated from the API method table (schemas validate
 * every request), typed errors mapped to statuses; the event, snoop and console streams come
 * from `streams.ts`. Knows nothing of QEMU: it calls the manager.
 */
import type { Socket } from 'node:net';
import type { Static } from '@sinclair/typebox';
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest, type onRequestHookHandler } from 'fastify';
import type { AccessClass, StreamName } from '../api/index.js';
import { Methods, type MethodName, type MethodSpec } from '../api/index.js';
import { VolumeContentPath } from '../api/index.js';
import { assertStateAllowed, isStatefulMethod } from '../api/index.js';
import { buildOpenApi, ApiVersion } from '../api/index.js';
import { httpStatusOf } from '../api/index.js';
import type {
  AutostartBody, DaemonInfo, DefineBody, DefinitionQuery, HostShutdownBody, ListQuery, MonitorBody,
  ShutdownBody, StartBody, UndefineQuery,
} from '../api/index.js';
import type { Origin, Store } from '../store/index.js';
import { errorMessage, isVirtkitError } from '../util/errors.js';
import { AccessControl, accessClassesOf, definitionAccess, originOf, type AccessPolicy, type Caller } from './access.js';
import { AuditLog } from './audit-log.js';
import {
  ConnectionGate, ConnectionTracker, DefaultConnectionLimits, capConnections, effectiveMaxConnections, type ConnectionLimits,
} from './connection-limits.js';
import { MaxHeaderBytes, checkRequestLine, clientErrorHandler, statusOf } from './http-errors.js';
import { lazySchemaCompilers } from './lazy-compilers.js';
import type { Manager } from './manager.js';
import { loadPeerCredentials } from './peer-cred.js';
import { poolHandlers, registerVolumeContentRoutes, type PoolService } from './pools.js';
import { networkHandlers } from './networks.js';
import { deviceHandlers } from './devices.js';
import { hostResourceHandlers } from './host-resources.js';
import { guestStateHandlers } from './guest-state-handlers.js';
import { observabilityHandlers, registerObservability } from './observability.js';
import { webHandlers } from './web-host.js';
import { apiCallDone } from './observability-probes.js';
import { registerStreams, StreamNameOf } from './streams.js';
import { RpcProtocol } from '../api/wire/index.js';
import { RpcServer } from './rpc.js';
import { MethodCodecs, type CallInput, type SerializerCompiler, type ValidatorCompiler } from './rpc-codecs.js';

export const BodyLimitBytes = 1024 * 1024;

export interface ApiOptions {
  manager: Manager;
  store: Store;
  info: () => DaemonInfo;
  pools: PoolService;
  /** STATE_DIR/audit.log; without it nothing is audited (in-process tests). */
  auditLogPath?: string;
  /** Who holds which access class (default: root and the daemon's own user only). */
  accessPolicy?: AccessPolicy;
}

export type LoggerConfig = { level: string; file: string } | { level: string; stream: NodeJS.WritableStream } | false;

/**
 * The volume content routes (registered by pools.ts), by `VERB path` (HEAD as GET): an
 * onRequest hook authorizes them for their stream's access class before they start. The
 * event, snoop and console streams ask through `registerStreams`' authorize hook instead.
 */
const StreamRoutes = new Map<string, StreamName>([
  [`GET ${VolumeContentPath}`, 'volume.download'],
  [`PUT ${VolumeContentPath}`, 'volume.upload'],
]);

const ConsoleDomain = /^\/domains\/([^/?]+)\/console(?:[/?]|$)/;

function decodedOr(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** The access class a call needs: its method's, or admin for a definition that passes anything to QEMU. */
function accessNeeded(method: MethodName, spec: MethodSpec, req: { body?: unknown }, caller: Caller): AccessClass {
  if ((method === 'domain.define' || method === 'domain.updateDefinition') && !accessClassesOf(caller).includes('admin')) {
    return definitionAccess(req.body as DefineBody, caller);
  }
  return spec.access;
}

type Handler = (req: FastifyRequest, origin: Origin) => Promise<unknown>;

type ResultOf<M extends MethodName> = Static<(typeof Methods)[M]['result']>;
type VerbOf<M extends string> = M extends `domain.${infer V}` ? V : never;

/**
 * The methods the daemon binds by their name alone: `domain.<verb>` taking nothing but the
 * domain's name (no query, no body) whose manager method is `<verb>(origin, name)` returning
 * the method's result (or nothing, answered `{ ok: true }`). Adding such a verb needs no line
 * here; any other method fails to compile until `handlers()` binds it.
 */
type BoundByName = {
  [M in MethodName]: (typeof Methods)[M] extends { body: unknown } | { query: unknown } ? never
    : [VerbOf<M>] extends [never] ? never
    : VerbOf<M> extends keyof Manager
      ? Manager[VerbOf<M>] extends (origin: Origin, name: string) => Promise<ResultOf<M> | void> ? M : never
      : never
}[MethodName];

function boundByName(m: Manager, method: MethodName): Handler {
  const verb = method.slice('domain.'.length);
  const methods = m as unknown as Record<string, ((origin: Origin, name: string) => Promise<unknown>) | undefined>;
  return async (req, o) => (await methods[verb]!.call(m, o, (req.params as { name: string }).name)) ?? { ok: true };
}

function handlers(m: Manager, info: () => DaemonInfo, pools: PoolService): Record<Exclude<MethodName, BoundByName>, Handler> {
  const name = (req: FastifyRequest): string => (req.params as { name: string }).name;
  return {
    'daemon.info': async () => info(),
    'domain.list': async (req, o) => ({ domains: await m.list(o, (req.query as ListQuery).all === true) }),
    'domain.define': (req, o) => m.define(o, req.body as DefineBody),
    'domain.undefine': async (req, o) => {
      await m.undefine(o, name(req), (req.query as UndefineQuery).force === true);
      return { ok: true };
    },
    'domain.start': (req, o) => m.start(o, name(req), req.body as StartBody),
    'domain.shutdown': (req, o) => m.shutdown(o, name(req), (req.body as ShutdownBody).timeout),
    'domain.setAutostart': (req, o) => m.setAutostart(o, name(req), (req.body as AutostartBody).enabled),
    'domain.getDefinition': async (req, o) => {
      const query = req.query as DefinitionQuery;
      const format = query.format ?? 'yaml';
      return { text: await m.definitionText(o, name(req), format, { live: query.live === true }), format };
    },
    'domain.updateDefinition': (req, o) => m.updateDefinition(o, name(req), req.body as DefineBody),
    'domain.consoleLog': async (req, o) => ({ text: await m.consoleLog(o, name(req)) }),
    'domain.monitorCommand': async (req, o) => ({ result: await m.monitorCommand(o, name(req), req.body as MonitorBody) }),
    'host.shutdown': (req, o) => m.hostShutdown(o, (req.body as HostShutdownBody).timeout),
    ...poolHandlers(pools),
    ...networkHandlers(m.networks),
    ...deviceHandlers(m),
    ...hostResourceHandlers(m),
    ...guestStateHandlers(m),
    ...observabilityHandlers(m),
    ...webHandlers(m),
  };
}

/** Turns anything thrown into the `{ error }` body and its status. */
export function errorReply(err: unknown): { status: number; body: { error: { code: string; message: string; data?: Record<string, unknown> } } } {
  if (isVirtkitError(err)) return { status: statusOf(err), body: { error: err.toJSON() } };
  const e = err as { validation?: { instancePath?: string; message?: string; params?: Record<string, unknown> }[]; validationContext?: string; statusCode?: number; code?: string; message?: string };
  if (e.validation) {
    const first = e.validation[0];
    const path = `${e.validationContext ?? 'body'}${first?.instancePath ? first.instancePath.replace(/\//g, '.') : ''}`;
    const extra = first?.params && 'additionalProperty' in first.params ? ` (${String(first.params.additionalProperty)})` : '';
    return { status: 400, body: { error: { code: 'request.invalid', message: `${path}: ${first?.message ?? 'invalid'}${extra}`, data: { path } } } };
  }
  if (e.statusCode === 414 || e.statusCode === 431) {
    return { status: e.statusCode, body: { error: { code: 'request.too-large', message: e.message ?? 'request too large', data: { fastifyCode: e.code } } } };
  }
  if (e.statusCode === 413 || e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return { status: 413, body: { error: { code: 'request.too-large', message: `request body larger than ${BodyLimitBytes} bytes`, data: { limit: BodyLimitBytes } } } };
  }
  if (e.statusCode !== undefined && e.statusCode >= 400 && e.statusCode < 500) {
    return { status: e.statusCode, body: { error: { code: 'request.invalid', message: e.message ?? 'bad request', data: { fastifyCode: e.code } } } };
  }
  return { status: 500, body: { error: { code: 'internal', message: errorMessage(err) } } };
}

/** The connection limits of each app, for `registerApi`. */
const limitsOfApp = new WeakMap<FastifyInstance, ConnectionLimits>();

/**
 * The fastify instance with the daemon's limits and logger; routes come with `registerApi`.
 * The limits (docs/api.md, "Limits") default to `DefaultConnectionLimits`.
 */
export function createApp(logger: LoggerConfig, limits: ConnectionLimits = DefaultConnectionLimits): FastifyInstance {
  const tracker = new ConnectionTracker();
  const app = Fastify({
    logger,
    // Per-request lines would dominate the log (and the cost of a list call); operations log themselves.
    logController: new LogController({ disableRequestLogging: true }),
    // No per-request child logger: requests are not logged, and building one costs on every call.
    childLoggerFactory: (logger) => logger,
    bodyLimit: BodyLimitBytes,
    forceCloseConnections: true,
    // Inactivity timeout of every connection; what it closes is decided by the tracker's policy.
    connectionTimeout: limits.idleTimeoutMs,
    keepAliveTimeout: limits.idleTimeoutMs,
    // No bound on a whole request: an upload may take hours. A stalled one is cut as idle.
    requestTimeout: 0,
    http: {
      headersTimeout: limits.headersTimeoutMs,
      // Node checks the headers timeout on this interval (30 s by default, coarser than the limit).
      connectionsCheckingInterval: Math.max(100, Math.min(1_000, limits.headersTimeoutMs)),
      maxHeaderSize: MaxHeaderBytes,
    },
    // Requests Node's parser rejects, and URLs the router cannot decode, answer with the envelope too.
    clientErrorHandler: clientErrorHandler(limits.headersTimeoutMs, (socket) => tracker.responseStarted(socket)),
    frameworkErrors: (err, _req, reply) => {
      const { status, body } = errorReply(err);
      void (reply as FastifyReply).status(status).send(body);
    },
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true } },
    // Each route's validators and serializer are compiled at its first call (lazy-compilers.ts).
    schemaController: { compilersFactory: lazySchemaCompilers() },
  }) as unknown as FastifyInstance;
  tracker.watch(app.server);
  capConnections(app.server, effectiveMaxConnections(limits), (fields, msg) => app.log.warn(fields, msg));
  limitsOfApp.set(app, limits);
  return app;
}

export async function registerApi(app: FastifyInstance, opts: ApiOptions): Promise<void> {
  // A daemon that cannot tell who calls must not serve: fail here, with what to run, not per request.
  loadPeerCredentials();
  const audit = opts.auditLogPath ? AuditLog.open(opts.auditLogPath) : undefined;
  app.addHook('onClose', async () => audit?.close());
  const access = new AccessControl(audit, (err) => app.log.error({ err: errorMessage(err) }, 'cannot write the audit log'), opts.accessPolicy);
  const limits = limitsOfApp.get(app) ?? DefaultConnectionLimits;
  const gate = new ConnectionGate(limits, [0, process.getuid?.() ?? 0], (fields, msg) => app.log.warn(fields, msg));
  // Identified once per connection, when it is accepted: one getsockopt, no waiting.
  const pidsByClient = new Map<string, number>();
  app.server.on('connection', (socket: Socket) => {
    const caller = access.identify(socket);
    // Over its uid's limit: refused at its first request, and given little time to send it.
    if (gate.admit(socket, caller.uid)) socket.setTimeout(Math.min(limits.idleTimeoutMs, 2_000));
    if (caller.pid !== undefined) {
      pidsByClient.set(caller.client, caller.pid);
      // Snoop may still name the connection's operations a moment after it closed.
      socket.on('close', () => setTimeout(() => pidsByClient.delete(caller.client), 10_000).unref());
    }
  });

  // First of all hooks: a connection over its uid's limit gets the refusal and is closed; a
  // request line over the limit is 414 (longer ones the parser refuses, see http-errors.ts).
  app.addHook('onRequest', (req, reply, done) => {
    const refusal = gate.refusalOf(req.raw.socket);
    if (refusal) {
      void reply.status(httpStatusOf(refusal.code)).header('connection', 'close').send({ error: refusal.toJSON() });
      return;
    }
    try {
      checkRequestLine(req.raw);
      done();
    } catch (err) {
      done(err as Error);
    }
  });

  app.setErrorHandler((err, _req, reply) => {
    const { status, body } = errorReply(err);
    if (status >= 500) app.log.error({ err: errorMessage(err) }, 'request failed');
    void reply.status(status).send(body);
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send({ error: { code: 'request.invalid', message: `no such endpoint: ${req.method} ${req.url}` } });
  });

  const table: Partial<Record<MethodName, Handler>> = handlers(opts.manager, opts.info, opts.pools);
  const bound = new Map<MethodName, Handler>();
  /**
   * One call of a method, by a route or by an RPC frame, once its input passed the method's
   * schemas: the access class, the state precondition, the handler, the audit line, metrics.
   */
  const invoke = async (method: MethodName, req: CallInput, caller: Caller): Promise<unknown> => {
    const spec: MethodSpec = Methods[method];
    let handler = bound.get(method);
    if (handler === undefined) bound.set(method, handler = table[method] ?? boundByName(opts.manager, method));
    const started = performance.now();
    const origin = originOf(caller);
    const domain = (req.params as { name?: string } | undefined)?.name;
    const needed = accessNeeded(method, spec, req, caller);
    access.authorize(caller, needed, method, domain);
    try {
      // The state precondition, checked here for every method that declares one (the
      // manager checks again under the domain's lock, with the same function).
      if (isStatefulMethod(method) && domain !== undefined) {
        const { state } = await opts.manager.state(origin, domain);
        assertStateAllowed(method, domain, state, { force: (req.query as { force?: unknown } | undefined)?.force === true });
      }
      // The handlers read only the request's params, query and body.
      const result = await handler(req as unknown as FastifyRequest, origin);
      access.record(caller, method, needed, domain ?? (result as { name?: string } | undefined)?.name);
      apiCallDone(method, domain, caller, started);
      return result;
    } catch (err) {
      access.record(caller, method, needed, domain, err);
      apiCallDone(method, domain, caller, started, err);
      throw err;
    }
  };
  for (const [method, spec] of Object.entries(Methods) as [MethodName, MethodSpec][]) {
    app.route({
      method: spec.http,
      url: spec.path,
      schema: {
        operationId: method,
        ...(spec.params ? { params: spec.params } : {}),
        ...(spec.query ? { querystring: spec.query } : {}),
        ...(spec.body ? { body: spec.body } : {}),
        response: { [spec.status ?? 200]: spec.result },
      },
      handler: async (req, reply) => {
        const result = await invoke(method, req as CallInput, access.callerOf(req.raw));
        void reply.status(spec.status ?? 200);
        return result;
      },
    });
  }

  // The RPC channel (src/daemon/rpc.ts): the same calls over upgraded connections of this socket.
  const rpc = new RpcServer({
    codecs: new MethodCodecs(Methods,
      () => app.validatorCompiler as unknown as ValidatorCompiler, () => app.serializerCompiler as unknown as SerializerCompiler),
    call: (method, input, caller) => invoke(method, input, caller),
    callerOf: (req) => access.callerOf(req),
    refusalOf: (socket) => gate.refusalOf(socket),
    errorReply,
    onServerError: (err) => app.log.error({ err: errorMessage(err) }, 'request failed'),
    idleTimeoutMs: limits.idleTimeoutMs,
  });
  app.addHook('preClose', async () => rpc.closeAll());

  // An empty POST body is an empty object: `virtkit start` sends no body.
  // A callback hook, not an async one: it runs on every request, GETs included, and an async
  // hook costs a promise and a turn of the microtask queue each time.
  app.addHook('preValidation', (req, _reply, done) => {
    if (req.body === undefined && (req.method === 'POST' || req.method === 'PUT')) req.body = {};
    done();
  });

  // Before the stream routes are registered: their access class is checked before they start.
  app.addHook('onRoute', (route) => {
    const verbs = Array.isArray(route.method) ? route.method : [route.method];
    const stream = verbs.map((v) => StreamRoutes.get(`${v === 'HEAD' ? 'GET' : v} ${route.url}`)).find((p) => p !== undefined);
    if (!stream) return;
    const authorize: onRequestHookHandler = (req, _reply, done) => {
      try {
        access.authorizeStream(req.raw, stream);
        done();
      } catch (err) {
        done(err as Error);
      }
    };
    const before = route.onRequest;
    route.onRequest = before === undefined ? [authorize] : [authorize, ...(Array.isArray(before) ? before : [before])];
  });

  await registerVolumeContentRoutes(app, opts.pools);

  // Built on first request: most daemons never serve it, and it need not sit in memory.
  let openapi: ReturnType<typeof buildOpenApi> | undefined;
  app.get('/openapi.json', async () => (openapi ??= buildOpenApi()));

  const pidOfClient = async (client: string): Promise<number | null> => pidsByClient.get(client) ?? null;

  registerStreams(app, {
    store: opts.store,
    consoleOf: (name) => opts.manager.consoleOf(name),
    pidOfClient,
    connectionRefusal: (socket) => gate.refusalOf(socket),
    upgrades: new Map([[RpcProtocol, (req, socket, head) => rpc.upgrade(req, socket, head)]]),
    // The class comes from the one access table (src/api/access.ts), not from the caller's guess.
    authorize: (_access, req, kind) => {
      const domain = kind.startsWith('console.') ? ConsoleDomain.exec(req.url ?? '')?.[1] : undefined;
      access.authorizeStream(req, StreamNameOf[kind], domain === undefined ? undefined : decodedOr(domain));
    },
  });
  registerObservability(app, { manager: opts.manager, store: opts.store, pidOfClient: (client) => pidsByClient.get(client) });

  await app.ready();
}

export { ApiVersion };
