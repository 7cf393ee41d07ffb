/**
 * What an idle daemon has loaded (docs/performance.md, "Daemon memory"): not prom-client, ws,
 * ajv, fast-json-stringify, the web listener's modules, nor the format converters; each is
 * loaded when first needed and then works: `/metrics` counts the calls made before the first
 * scrape, a validated call gets its validator, an event WebSocket is served, dumpxml converts on
 * the client's side, and `--http` serves the API with the token. Hooks record every module the
 * built daemon resolves (ESM) or requires (CommonJS); the test asserts what is loaded, never
 * how much memory or time it took.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { connect, type VirtkitClient } from '../../src/client/index.js';
import { codeOf } from '../helpers/error-code.js';
import { parsePromText } from '../helpers/prom-text.js';

const cli = resolve('bin/virtkit.js');
let work: string;

interface Daemon {
  proc: ChildProcess;
  stateDir: string;
  socket: string;
  log: string;
  client: VirtkitClient;
}
const daemons: Daemon[] = [];

/** The daemon's modules so far: file paths and URLs, one per module. */
function modulesOf(d: Daemon): string[] {
  return [...new Set(readFileSync(d.log, 'utf8').split('\n').filter(Boolean))];
}

function loaded(d: Daemon, fragment: string): boolean {
  return modulesOf(d).some((m) => m.includes(fragment));
}

/** Starts the built daemon with the hooks; resolves once it printed that it listens (no API call made). */
async function startDaemon(name: string, args: string[] = []): Promise<Daemon> {
  const stateDir = join(work, name);
  const log = join(work, `${name}-modules.log`);
  writeFileSync(log, '');
  const proc = spawn(process.execPath, ['--require', join(work, 'require-hook.cjs'), '--import', join(work, 'register.mjs'), cli, 'daemon',
    '--state-dir', stateDir, '--log-level', 'warn', ...args], { env: { ...process.env, VIRTKIT_MODULE_LOG: log }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  await new Promise<void>((ready, fail) => {
    proc.stderr!.on('data', (b: Buffer) => {
      stderr += b.toString();
      // Printed once the socket listens and, with --http, the web listener too.
      if (/listening on/.test(stderr) && (!args.includes('--http') || /web manager on/.test(stderr))) ready();
    });
    proc.once('exit', () => fail(new Error(`daemon exited: ${stderr}`)));
  });
  const d = { proc, stateDir, socket: join(stateDir, 'virtkit.sock'), log, client: connect(join(stateDir, 'virtkit.sock')) };
  daemons.push(d);
  return d;
}

const Lazy = {
  'prom-client': '/node_modules/prom-client/',
  ws: '/node_modules/ws/',
  ajv: '/node_modules/ajv/',
  // Its compiler; fastify's own error serializer, compiled in advance, requires the library's runtime part.
  'fast-json-stringify': '/node_modules/fast-json-stringify/index.js',
  'the metrics registry': '/dist/src/daemon/observability-metrics.js',
  'the web listener': '/dist/src/daemon/http-listener.js',
  'the web pages\' server': '/dist/src/daemon/web-static.js',
  'the VNC bridge': '/dist/src/daemon/web-vnc.js',
  'fast-xml-parser': '/node_modules/fast-xml-parser/',
  'the format converters': '/dist/src/formats/',
};

let plain: Daemon;

beforeAll(async () => {
  work = mkdtempSync('/tmp/vk-mem-');
  writeFileSync(join(work, 'hooks.mjs'), `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  appendFileSync(process.env.VIRTKIT_MODULE_LOG, r.url + '\\n');
  return r;
}
`);
  writeFileSync(join(work, 'register.mjs'), `import { register } from 'node:module';
register(${JSON.stringify(pathToFileURL(join(work, 'hooks.mjs')).href)});
`);
  // CommonJS modules (fastify's, prom-client's and ws's own files) are loaded by require, which the hook above does not see.
  writeFileSync(join(work, 'require-hook.cjs'), `const Module = require('node:module');
const { appendFileSync } = require('node:fs');
const load = Module._load;
Module._load = function (request, parent, isMain) {
  try { appendFileSync(process.env.VIRTKIT_MODULE_LOG, Module._resolveFilename(request, parent, isMain) + '\\n'); } catch {}
  return load.apply(this, arguments);
};
`);
  plain = await startDaemon('plain');
});

afterAll(() => {
  for (const d of daemons) {
    d.client.close();
    d.proc.kill('SIGKILL');
  }
  rmSync(work, { recursive: true, force: true });
});

describe('an idle daemon', () => {
  it('has loaded the server and the store, and none of what waits for first use', () => {
    // The hooks see the daemon's modules at all.
    expect(loaded(plain, '/node_modules/fastify/')).toBe(true);
    expect(loaded(plain, '/node_modules/better-sqlite3/')).toBe(true);
    for (const [what, fragment] of Object.entries(Lazy)) expect(modulesOf(plain).filter((m) => m.includes(fragment)), what).toEqual([]);
  });
});

describe('first use', () => {
  it('/metrics, scraped for the first time, counts the calls made before it', async () => {
    const c = plain.client;
    await c.daemonInfo();
    await c.define('name: early\nmemory: 256MiB\nballoon: false\n');
    await c.list({ all: true });
    expect(await codeOf(c.info('no-such-domain'))).toBe('domain.not-found');
    expect(loaded(plain, '/node_modules/prom-client/')).toBe(false);
    // A body was validated, so its validator was compiled.
    expect(loaded(plain, '/node_modules/ajv/')).toBe(true);

    const fams = parsePromText(await c.metrics());
    const sample = (family: string, name: string, labels: Record<string, string>): number | undefined =>
      fams.get(family)?.samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
    expect(sample('virtkit_api_calls_total', 'virtkit_api_calls_total', { method: 'domain.define', outcome: 'ok' })).toBe(1);
    expect(sample('virtkit_api_calls_total', 'virtkit_api_calls_total', { method: 'domain.list', outcome: 'ok' })).toBe(1);
    expect(sample('virtkit_api_calls_total', 'virtkit_api_calls_total', { method: 'domain.info', outcome: 'domain.not-found' })).toBe(1);
    expect(fams.get('virtkit_api_call_duration_seconds')?.type).toBe('histogram');
    expect(sample('virtkit_api_call_duration_seconds', 'virtkit_api_call_duration_seconds_count', { method: 'domain.define' })).toBe(1);
    expect(sample('virtkit_api_call_duration_seconds', 'virtkit_api_call_duration_seconds_bucket', { method: 'domain.define', le: '+Inf' })).toBe(1);
    expect(sample('virtkit_domains', 'virtkit_domains', { state: 'shutoff' })).toBe(1);
    expect(loaded(plain, '/node_modules/prom-client/')).toBe(true);

    // Later calls are counted on top, scrape after scrape.
    await c.list({ all: true });
    const again = parsePromText(await c.metrics());
    expect(again.get('virtkit_api_calls_total')?.samples.find((s) => s.labels.method === 'domain.list')?.value).toBe(2);
  });

  it('an event WebSocket loads ws and is served', async () => {
    const ws = new WebSocket(`ws+unix:${plain.socket}:/events?since=0`);
    const first = await new Promise<string>((res, rej) => {
      ws.once('message', (m: Buffer) => res(m.toString()));
      ws.once('error', rej);
    });
    ws.close();
    expect(JSON.parse(first)).toHaveProperty('cursor');
    expect(loaded(plain, '/node_modules/ws/')).toBe(true);
  });

  it('dumpxml converts on the client\'s side: the daemon loads no format converter', () => {
    const r = spawnSync(process.execPath, [cli, 'dumpxml', 'early'], { env: { ...process.env, VIRTKIT_CONNECT: plain.socket }, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/<domain type='[a-z]+'>[\s\S]*<name>early<\/name>/);
    expect(loaded(plain, '/node_modules/fast-xml-parser/')).toBe(false);
    expect(loaded(plain, '/dist/src/formats/')).toBe(false);
  });

  it('--http loads the web listener, which serves the API with the token', async () => {
    const web = await startDaemon('web', ['--http', '127.0.0.1:0']);
    expect(loaded(web, '/dist/src/daemon/http-listener.js')).toBe(true);
    const { url } = JSON.parse(readFileSync(join(web.stateDir, 'http.json'), 'utf8')) as { url: string };
    const token = readFileSync(join(web.stateDir, 'http-token'), 'utf8').trim();
    const res = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ pid: web.proc.pid });
    expect((await fetch(url, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
  });
});
