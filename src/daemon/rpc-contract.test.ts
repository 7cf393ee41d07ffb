/**
 * The RPC channel answers every method of the table as its REST route does. Two daemons on
 * the fake driver, set up alike, get the same script of calls: one over HTTP (a request per
 * call), the other over the channel; each answer (the result, or the error's code, message
 * and data) must be the same once what differs between two daemons by nature (their
 * directories, uuids, pids, times) is masked. The script is every method of the table with
 * the parameters of one domain and an empty or absent body (mostly refusals: validation with
 * its field path, states, missing objects), then a lifecycle and bad inputs on purpose.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Methods, type MethodName, type MethodSpec } from '../api/index.js';
import { connect, type VirtkitClient } from '../client/index.js';
import { FakeDomainDriver, FakeHost } from '../qemu/driver/fake-driver.js';
import { startDaemon, type RunningDaemon } from './index.js';

/** A call's input, loosely typed: the script sends wrong types on purpose. */
type Input = { params?: Record<string, unknown>; query?: Record<string, unknown>; body?: unknown };

interface Twin { dir: string; host: FakeHost; daemon: RunningDaemon; client: VirtkitClient }

let rest: Twin;
let rpc: Twin;

async function twin(transport: 'http' | 'rpc'): Promise<Twin> {
  const dir = await mkdtemp(`/tmp/vk-rpc-${transport}-`);
  const host = new FakeHost();
  const daemon = await startDaemon({ stateDir: join(dir, 'state'), logFile: join(dir, 'daemon.log'), driver: new FakeDomainDriver({ host }) });
  return { dir, host, daemon, client: connect(daemon.dirs.socketPath, { transport }) };
}

beforeAll(async () => {
  process.env.VIRTKIT_BOOT_ID = 'fake-boot';
  rest = await twin('http');
  rpc = await twin('rpc');
});

afterAll(async () => {
  for (const t of [rest, rpc]) {
    t.client.close();
    for (const g of t.host.liveGuests()) g.die();
    await t.daemon.stop();
    await rm(t.dir, { recursive: true, force: true });
  }
  delete process.env.VIRTKIT_BOOT_ID;
});

const Uuid = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;
const Mac = /52:54:00(:[0-9a-f]{2}){3}/g;
const Volatile = new Set(['pid', 'time', 'bootId', 'startedAt', 'uptime', 'since', 'seconds', 'elapsedMs', 'ms']);

/** The answer with what differs between two daemons by nature masked. */
function masked(value: unknown, dir: string): unknown {
  if (typeof value === 'string') return value.replaceAll(dir, '<dir>').replace(Uuid, '<uuid>').replace(Mac, '<mac>');
  if (Array.isArray(value)) return value.map((v) => masked(v, dir));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, Volatile.has(k) ? '<volatile>' : masked(v, dir)]));
  }
  return value;
}

async function answer(t: Twin, method: MethodName, input: Input): Promise<unknown> {
  try {
    return { result: masked(await t.client.call(method, input as never), t.dir) };
  } catch (err) {
    const e = err as { code?: string; message?: string; data?: Record<string, unknown> };
    return { error: masked({ code: e.code, message: e.message, data: e.data }, t.dir) };
  }
}

/** Calls both twins the same way; their answers must be equal. Returns the answer. */
async function same(method: MethodName, input: Input = {}): Promise<unknown> {
  const viaRest = await answer(rest, method, input);
  const viaRpc = await answer(rpc, method, input);
  expect(viaRpc, `${method} ${JSON.stringify(input)}`).toEqual(viaRest);
  return viaRest;
}

const ParamValues: Record<string, string> = { name: 'web', pool: 'p', volume: 'v.qcow2', network: 'n', snapshot: 's1', device: 'vda' };
/** Methods whose call with empty input acts on the host (its guests, files, helpers): only their refusals are compared. */
const NotCalledBare = new Set<MethodName>(['host.shutdown']);

const definition = (name: string): string =>
  `name: ${name}\nmemory: 64MiB\nboot:\n  loader: direct\n  kernel: ${process.execPath}\non_crash: destroy\n`;

it('answers every method of the table over the channel as over REST', async () => {
  await same('domain.define', { body: { text: definition('web') } });
  await same('domain.define', { body: { text: definition('db') } });
  // Deletions last: the others find the domains there.
  const methods = (Object.keys(Methods) as MethodName[]).sort((a, b) => Number(Methods[a].http === 'DELETE') - Number(Methods[b].http === 'DELETE'));
  for (const method of methods) {
    if (NotCalledBare.has(method)) continue;
    const spec: MethodSpec = Methods[method];
    const params = spec.params
      ? Object.fromEntries(Object.keys((spec.params as unknown as { properties: Record<string, unknown> }).properties).map((k) => [k, ParamValues[k] ?? 'x']))
      : undefined;
    await same(method, params ? { params } : {});
  }
}, 60_000);

it('answers a lifecycle and bad inputs alike: results, states, validation paths, defaults', async () => {
  const calls: [MethodName, Input][] = [
    ['domain.list', { query: { all: true } }],
    ['domain.list', {}],
    // A query value of the wrong type, an unknown query field, a body field of the wrong type, an extra body field.
    ['domain.list', { query: { all: 'maybe' } }],
    ['domain.list', { query: { every: true } }],
    ['domain.define', { body: { text: 5 } }],
    ['domain.define', { body: { text: definition('x'), color: 'red' } }],
    ['domain.define', { body: { text: 'name: [' } }],
    ['domain.define', { body: { text: definition('web') } }],
    ['domain.info', { params: { name: 'nope' } }],
    ['domain.info', { params: { name: '../etc' } }],
    ['domain.start', { params: { name: 'web' }, body: { paused: true } }],
    ['domain.info', { params: { name: 'web' } }],
    ['domain.start', { params: { name: 'web' } }],
    ['domain.resume', { params: { name: 'web' } }],
    ['domain.suspend', { params: { name: 'web' } }],
    ['domain.resume', { params: { name: 'web' } }],
    ['domain.undefine', { params: { name: 'web' } }],
    ['domain.setAutostart', { params: { name: 'web' }, body: { enabled: true } }],
    ['domain.setAutostart', { params: { name: 'web' }, body: { enabled: 'yes' } }],
    ['domain.getDefinition', { params: { name: 'web' }, query: { format: 'json' } }],
    ['domain.getDefinition', { params: { name: 'web' }, query: { format: 'xml' } }],
    ['domain.shutdown', { params: { name: 'web' }, body: { timeout: -1 } }],
    ['domain.destroy', { params: { name: 'web' } }],
    ['domain.state', { params: { name: 'web' } }],
    ['domain.undefine', { params: { name: 'db' }, query: { force: true } }],
    ['domain.list', { query: { all: true } }],
  ];
  for (const [method, input] of calls) await same(method, input);
});
