/**
 * Resource limits, screens and keys, domain capabilities in the manager (docs/resource-limits.md,
 * docs/screens.md, docs/firmware.md). Under the domain's lock (Manager.withDevices), a limit
 * change goes to the running guest's cgroup through the driver (live) and to the saved
 * definition (config), both recorded with the event in one store transaction, as hot-plug does.
 */
import type { FastifyRequest } from 'fastify';
import type {
  HostResourceMethods, ResourceLimitsBody, ResourceLimitsQuery, ResourceLimitsResult, ScreenshotResult, SendKeyBody, VncDisplayResult,
  VncPasswordResult, DomainCapabilitiesResult,
} from '../api/index.js';
import { formatSize, videoModelOf, type DomainDefinition } from '../conf/index.js';
import { runPaths, type DomainDriver, type GuestHandle } from '../qemu/index.js';
import type { Origin } from '../store/index.js';
import { VirtkitError } from '../util/errors.js';
import { resolveScope, type DeviceContext } from './devices.js';
import { domainPath, requireDomain, visibleState, writeLive } from './domain-records.js';
import { recordEvent } from './event-log.js';

const LimitFields = ['cpu_shares', 'cpu_quota', 'memory_limit'] as const;
type LimitField = (typeof LimitFields)[number];
type Limits = Partial<Record<LimitField, number>>;

function limitsOfDef(def: DomainDefinition): Limits {
  const out: Limits = {};
  for (const f of LimitFields) if (def[f] !== undefined) out[f] = def[f];
  return out;
}

/** A definition with the body's limits: a number sets, null removes, absent keeps. */
export function withLimits(def: DomainDefinition, body: Pick<ResourceLimitsBody, LimitField>): DomainDefinition {
  const out: DomainDefinition = { ...def };
  for (const f of LimitFields) {
    const value = body[f];
    if (value === null) delete out[f];
    else if (value !== undefined) out[f] = value;
  }
  return out;
}

function requireHandle(ctx: DeviceContext): GuestHandle {
  if (ctx.handle === undefined) {
    throw new VirtkitError('domain.invalid-state', `"${ctx.rec.name}" is not running`, { name: ctx.rec.name, state: visibleState(ctx.rec.status), allowed: ['running', 'paused'] });
  }
  return ctx.handle;
}

export async function resourceLimits(ctx: DeviceContext, query: ResourceLimitsQuery): Promise<ResourceLimitsResult> {
  if (query.config === true || ctx.handle === undefined) return { ...limitsOfDef(ctx.rec.definition), source: 'config' };
  const info = await ctx.handle.resourceLimits();
  return { ...limitsOfDef(ctx.handle.liveDefinition()), source: 'live', ...(info.cgroup ? { cgroup: info.cgroup } : {}) };
}

function describe(limits: Limits): string {
  const parts = LimitFields.filter((f) => limits[f] !== undefined).map((f) => `${f}=${f === 'memory_limit' ? formatSize(limits[f]!) : String(limits[f])}`);
  return parts.length === 0 ? 'no limits' : parts.join(',');
}

export async function setResourceLimits(ctx: DeviceContext, body: ResourceLimitsBody): Promise<ResourceLimitsResult> {
  if (LimitFields.every((f) => body[f] === undefined)) {
    throw new VirtkitError('argument.invalid', 'limits: give at least one of cpu_shares, cpu_quota, memory_limit', {});
  }
  const scope = resolveScope(ctx, body);
  const handle = scope.live ? requireHandle(ctx) : undefined;
  const saved = scope.config ? withLimits(ctx.rec.definition, body) : undefined;
  if (handle) {
    const live = withLimits(handle.liveDefinition(), body);
    await handle.setResourceLimits({ cpu_shares: live.cpu_shares, cpu_quota: live.cpu_quota, memory_limit: live.memory_limit });
  }
  const shown = handle ? handle.liveDefinition() : saved ?? ctx.rec.definition;
  await ctx.commit(async (tx) => {
    const cur = await requireDomain(tx, ctx.rec.name);
    if (saved) await tx.write(domainPath(ctx.rec.name, 'definition'), JSON.stringify(saved));
    if (handle) await writeLive(tx, ctx.rec.name, handle.liveDefinition());
    await recordEvent(tx, 'edited', cur, `limits ${describe(limitsOfDef(shown))}`);
  });
  const info = handle ? await handle.resourceLimits() : undefined;
  return {
    ...limitsOfDef(shown), source: handle ? 'live' : 'config', ...(info?.cgroup ? { cgroup: info.cgroup } : {}),
    changed: { live: scope.live, config: scope.config },
  };
}

export function vncDisplay(ctx: DeviceContext): VncDisplayResult {
  const handle = requireHandle(ctx);
  const def = handle.liveDefinition();
  if (def.graphics !== 'vnc') {
    throw new VirtkitError('operation.unsupported', `graphics: "${ctx.rec.name}" has no VNC server (graphics: ${def.graphics})`, { field: 'graphics' });
  }
  return { socket: runPaths(handle.runDir).vncSocket, passwordRequired: def.vnc_password === true };
}

export async function setVncPassword(ctx: DeviceContext): Promise<VncPasswordResult> {
  const { socket } = vncDisplay(ctx);
  return { socket, password: await requireHandle(ctx).setVncPassword() };
}

export async function screenshot(ctx: DeviceContext): Promise<ScreenshotResult> {
  const handle = requireHandle(ctx);
  const def = handle.liveDefinition();
  // QEMU's own answer ("There is no QemuConsole I can screendump from") says the same, untyped
  if (videoModelOf(def) === 'none') {
    throw new VirtkitError('operation.unsupported', `video: "${ctx.rec.name}" has no display to take a screenshot of (graphics: ${def.graphics}, no video card)`, { field: 'video' });
  }
  const shot = await handle.screenshot();
  return { format: 'png', width: shot.width, height: shot.height, data: shot.png.toString('base64') };
}

export async function sendKey(ctx: DeviceContext, body: SendKeyBody): Promise<{ ok: true }> {
  await requireHandle(ctx).sendKeys(body.keys, body.holdtime);
  return { ok: true };
}

/** The manager's side, as the handlers need it (Manager implements it). */
export interface HostResourceManager {
  withDevices<T>(origin: Origin, name: string, fn: (ctx: DeviceContext) => Promise<T>): Promise<T>;
  readonly driver: DomainDriver;
}

type Handler = (req: FastifyRequest, origin: Origin) => Promise<unknown>;

export function hostResourceHandlers(m: HostResourceManager): Record<keyof typeof HostResourceMethods, Handler> {
  const name = (req: FastifyRequest): string => (req.params as { name: string }).name;
  const on = <T>(req: FastifyRequest, o: Origin, fn: (ctx: DeviceContext) => Promise<T> | T): Promise<T> =>
    m.withDevices(o, name(req), async (ctx) => fn(ctx));
  return {
    'domain.resourceLimits': (req, o) => on(req, o, (ctx) => resourceLimits(ctx, req.query as ResourceLimitsQuery)),
    'domain.setResourceLimits': (req, o) => on(req, o, (ctx) => setResourceLimits(ctx, req.body as ResourceLimitsBody)),
    'domain.vncDisplay': (req, o) => on(req, o, (ctx) => vncDisplay(ctx)),
    'domain.setVncPassword': (req, o) => on(req, o, (ctx) => setVncPassword(ctx)),
    'domain.screenshot': (req, o) => on(req, o, (ctx) => screenshot(ctx)),
    'domain.sendKey': (req, o) => on(req, o, (ctx) => sendKey(ctx, req.body as SendKeyBody)),
    'host.domainCapabilities': async (): Promise<DomainCapabilitiesResult> => m.driver.domainCapabilities(),
  };
}
