/**
 * Caller identity, access classes, the state precondition at dispatch and the audit log, over
 * a real unix socket (and fastify's inject for the in-process path). The daemon's manager is a
 * stub here: these tests are about the dispatch, not the guests. A second uid is a child
 * process run through `setpriv` as nobody (65534) when the tests run as root; otherwise the
 * daemon's own, non-root uid is the one that must be let in.
 */
import { spawn } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DomainState } from '../api/schemas.js';
import type { Store } from '../store/index.js';
import { AccessPolicy, accessClassesOf, definitionAccess, originOf, type Caller } from './access.js';
import type { AuditRecord } from './audit-log.js';
import { GroupDatabase } from './groups.js';
import type { Manager } from './manager.js';
import { peerCredentials } from './peer-cred.js';
import type { PoolService } from './pools.js';
import { createApp, registerApi } from './server.js';
import { snoopLine } from './streams.js';

const isRoot = process.getuid?.() === 0;
const WebSocketUpgrade = { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' };
const Nobody = 65534;

interface Reply { status: number; body: { error?: { code: string; message: string; data?: Record<string, unknown> } } & Record<string, unknown>; pid: number }

/** One HTTP request over the socket from a child process, as nobody when `asNobody`. */
function requestFromChild(socketPath: string, method: string, path: string, asNobody: boolean, headers: Record<string, string> = {}): Promise<Reply> {
  const script = `
    const req = require('http').request({ socketPath: ${JSON.stringify(socketPath)}, method: ${JSON.stringify(method)}, path: ${JSON.stringify(path)},
      headers: { 'content-type': 'application/json', ...${JSON.stringify(headers)} } }, (res) => {
      let text = ''; res.on('data', (d) => { text += d; });
      res.on('end', () => { process.stdout.write(JSON.stringify({ status: res.statusCode, body: text ? JSON.parse(text) : {} })); });
    });
    req.end(${method === 'GET' ? '' : "'{}'"});`;
  const argv = asNobody
    ? ['setpriv', [`--reuid=${Nobody}`, `--regid=${Nobody}`, '--clear-groups', process.execPath, '-e', script]] as const
    : [process.execPath, ['-e', script]] as const;
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], [...argv[1]], { cwd: '/', stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`request child exited ${code}: ${err}`));
      else resolve({ ...(JSON.parse(out) as Omit<Reply, 'pid'>), pid: child.pid! });
    });
  });
}

async function auditLines(path: string): Promise<AuditRecord[]> {
  const text = await readFile(path, 'utf8').catch(() => '');
  return text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as AuditRecord);
}

describe('peer credentials', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vk-cred-'));
    await chmod(dir, 0o755);
  });
  afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

  async function acceptOne(path: string, connectClient: () => void): Promise<Socket> {
    const accepted = new Promise<Socket>((resolve) => {
      const server = createServer((s) => { resolve(s); server.close(); });
      server.listen(path, () => { void chmod(path, 0o777).then(connectClient); });
    });
    return accepted;
  }

  it('are this process\'s uid, gid and pid for a connection from this process', async () => {
    const path = join(dir, 'self.sock');
    let client: Socket | undefined;
    const socket = await acceptOne(path, () => { client = connect(path); });
    expect(peerCredentials(socket)).toEqual({ uid: process.getuid!(), gid: process.getgid!(), pid: process.pid });
    socket.destroy();
    client?.destroy();
  });

  it(`are the other process's (as uid ${Nobody} when root) for a child's connection`, async () => {
    const path = join(dir, 'child.sock');
    const script = `const s=require('net').connect(${JSON.stringify(path)});s.on('data',()=>process.exit(0));`;
    let child: ReturnType<typeof spawn> | undefined;
    const socket = await acceptOne(path, () => {
      child = isRoot
        ? spawn('setpriv', [`--reuid=${Nobody}`, `--regid=${Nobody}`, '--clear-groups', process.execPath, '-e', script], { stdio: 'ignore', cwd: '/' })
        : spawn(process.execPath, ['-e', script], { stdio: 'ignore' });
    });
    try {
      const expected = isRoot ? { uid: Nobody, gid: Nobody } : { uid: process.getuid!(), gid: process.getgid!() };
      expect(peerCredentials(socket)).toEqual({ ...expected, pid: child!.pid });
      socket.end('bye');
    } finally {
      if (child && child.exitCode === null) await new Promise((r) => child!.once('exit', r));
    }
  });

  it('are absent for a socket without a descriptor', () => {
    expect(peerCredentials({} as Socket)).toBeUndefined();
  });
});

describe('dispatch: access classes, state preconditions, audit log', () => {
  let dir: string;
  let socketPath: string;
  let auditPath: string;
  let app: FastifyInstance;
  const states = new Map<string, DomainState>([['web', 'shutoff'], ['db', 'running']]);
  const calls: string[] = [];

  const manager = {
    state: async (_o: unknown, name: string) => {
      const state = states.get(name);
      if (!state) throw Object.assign(new Error('no such domain'), { statusCode: 404 });
      return { state };
    },
    info: async (_o: unknown, name: string) => ({ name, uuid: 'u', state: states.get(name), memory: 1, vcpus: 1, autostart: false, tainted: [] }),
    suspend: async (_o: unknown, name: string) => { calls.push(`suspend ${name}`); states.set(name, 'paused'); return { state: 'paused' }; },
    resume: async (_o: unknown, name: string) => { calls.push(`resume ${name}`); states.set(name, 'running'); return { state: 'running' }; },
    undefine: async (_o: unknown, name: string, force: boolean) => { calls.push(`undefine ${name} force=${force}`); },
    define: async () => { calls.push('define'); return { name: 'fresh', uuid: 'u', state: 'shutoff', memory: 1, vcpus: 1, autostart: false, tainted: [] }; },
    consoleOf: () => undefined,
  } as unknown as Manager;
  const store = { revision: 0, onOperation: () => () => undefined } as unknown as Store;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vk-access-'));
    await chmod(dir, 0o755);
    socketPath = join(dir, 'virtkit.sock');
    auditPath = join(dir, 'audit.log');
    app = createApp(false);
    await registerApi(app, {
      manager, store, pools: {} as PoolService, auditLogPath: auditPath,
      info: () => ({ version: '0', pid: process.pid, stateDir: dir, runDir: dir, bootId: 'b', revision: 0, apiExtensions: [] }),
    });
    await app.listen({ path: socketPath });
    await chmod(socketPath, 0o777);
  });
  afterAll(async () => {
    await app.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses a method the domain\'s state does not allow, before the handler, naming both states', async () => {
    const r = await requestFromChild(socketPath, 'POST', '/domains/web/suspend', false);
    expect(r.status).toBe(409);
    expect(r.body.error).toEqual({
      code: 'domain.invalid-state',
      message: 'cannot suspend "web": it is shut off (allowed: running)',
      data: { name: 'web', method: 'domain.suspend', state: 'shutoff', allowed: ['running'] },
    });
    expect(calls).not.toContain('suspend web');
    const lines = await auditLines(auditPath);
    expect(lines.at(-1)).toMatchObject({
      method: 'domain.suspend', access: 'write', domain: 'web', outcome: 'error', code: 'domain.invalid-state',
      uid: process.getuid!(), gid: process.getgid!(), pid: r.pid,
    });
  });

  it('answers the same through fastify inject (the in-process caller is the daemon itself)', async () => {
    const r = await app.inject({ method: 'POST', url: '/domains/web/resume', payload: {} });
    expect(r.statusCode).toBe(409);
    expect(r.json()).toEqual({ error: { code: 'domain.invalid-state', message: 'cannot resume "web": it is shut off (allowed: paused)',
      data: { name: 'web', method: 'domain.resume', state: 'shutoff', allowed: ['paused'] } } });
    const ok = await app.inject({ method: 'POST', url: '/domains/db/suspend', payload: {} });
    expect(ok.statusCode).toBe(200);
    expect(calls).toContain('suspend db');
  });

  it('lets force widen undefine to a running domain', async () => {
    expect((await app.inject({ method: 'DELETE', url: '/domains/db' })).statusCode).toBe(409);
    expect(calls).not.toContain('undefine db force=false');
    const r = await app.inject({ method: 'DELETE', url: '/domains/db?force=true' });
    expect(r.statusCode).toBe(200);
    expect(calls).toContain('undefine db force=true');
  });

  it('audits write calls with their outcome, and not reads', async () => {
    const before = (await auditLines(auditPath)).length;
    const r = await requestFromChild(socketPath, 'POST', '/domains/db/resume', false);
    expect(r.status).toBe(200);
    expect((await requestFromChild(socketPath, 'GET', '/domains/web', false)).status).toBe(200);
    const lines = (await auditLines(auditPath)).slice(before);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toEqual({ time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) as unknown, uid: process.getuid!(), gid: process.getgid!(), pid: r.pid,
      method: 'domain.resume', access: 'write', domain: 'db', outcome: 'ok' });
    expect((await stat(auditPath)).mode & 0o777).toBe(0o600);
  });

  it('lets this uid open streams, and audits a console opened for typing', async () => {
    const before = (await auditLines(auditPath)).length;
    // Let in: the refusal that follows is the state's (the stub runs no console), not access's.
    const typing = await requestFromChild(socketPath, 'GET', '/domains/db/console?mode=write', false, WebSocketUpgrade);
    expect(typing.body.error?.code).toBe('domain.invalid-state');
    const lines = (await auditLines(auditPath)).slice(before);
    expect(lines.map((l) => [l.method, l.access, l.domain, l.outcome, l.pid])).toEqual([['domain.console', 'write', 'db', 'ok', typing.pid]]);
  });

  it('names a defined domain in the audit line from the result', async () => {
    const r = await app.inject({ method: 'POST', url: '/domains', payload: { text: 'name: fresh\nmemory: 64MiB\n' } });
    expect(r.statusCode).toBe(201);
    expect((await auditLines(auditPath)).at(-1)).toMatchObject({ method: 'domain.define', domain: 'fresh', outcome: 'ok', pid: process.pid });
  });

  it(isRoot ? `refuses another uid (${Nobody}) every class, streams included, and audits the refusals`
    : 'lets the daemon\'s own (non-root) uid in, and the policy gives other uids nothing', async () => {
    if (!isRoot) {
      // Not root: no second uid can be made here; the daemon's own uid is the path under test.
      expect(accessClassesOf({ client: 'c', uid: process.getuid!() })).toEqual(['read', 'write', 'admin']);
      expect(accessClassesOf({ client: 'c', uid: process.getuid!() + 1 })).toEqual([]);
      expect((await requestFromChild(socketPath, 'GET', '/domains/web', false)).status).toBe(200);
      return;
    }
    expect(accessClassesOf({ client: 'c', uid: 0 })).toEqual(['read', 'write', 'admin']);
    expect(accessClassesOf({ client: 'c' })).toEqual([]);
    const read = await requestFromChild(socketPath, 'GET', '/domains/web', true);
    expect(read.status).toBe(403);
    expect(read.body.error).toMatchObject({ code: 'access.denied', data: { access: 'read', method: 'domain.info', uid: Nobody, gid: Nobody, pid: read.pid } });
    expect(read.body.error?.message).toBe(`domain.info needs read access, which uid ${Nobody} does not have`);
    const write = await requestFromChild(socketPath, 'POST', '/domains/db/suspend', true);
    expect(write.status).toBe(403);
    expect(write.body.error?.data).toMatchObject({ access: 'write' });
    const snoop = await requestFromChild(socketPath, 'GET', '/snoop', true);
    expect(snoop.status).toBe(403);
    expect(snoop.body.error).toMatchObject({ code: 'access.denied', data: { access: 'admin', method: 'store.snoop' } });
    const upload = await requestFromChild(socketPath, 'PUT', '/pools/p/volumes/v/content', true);
    expect(upload.status).toBe(403);
    expect(upload.body.error?.data).toMatchObject({ access: 'write', method: 'volume.upload' });
    const console = await requestFromChild(socketPath, 'GET', '/domains/db/console?mode=read', true, WebSocketUpgrade);
    expect(console.status).toBe(403);
    expect(console.body.error?.data).toMatchObject({ access: 'read', method: 'domain.consoleWatch' });
    const lines = (await auditLines(auditPath)).filter((l) => l.uid === Nobody);
    expect(lines.map((l) => [l.method, l.outcome, l.code, l.pid])).toEqual([
      ['domain.info', 'error', 'access.denied', read.pid],
      ['domain.suspend', 'error', 'access.denied', write.pid],
      ['store.snoop', 'error', 'access.denied', snoop.pid],
      ['volume.upload', 'error', 'access.denied', upload.pid],
      ['domain.consoleWatch', 'error', 'access.denied', console.pid],
    ]);
    expect(lines.at(-1)?.domain).toBe('db');
  });
});

describe('snoop lines', () => {
  it('carry the client\'s pid and uid from its credentials, and none for the daemon\'s own operations', () => {
    const rec = { time: 0, tx: '-' as const, op: 'write' as const, path: '/x', value: 'v', result: 'OK' as const };
    expect(snoopLine({ ...rec, origin: originOf({ client: 'c3', uid: 1000, gid: 1000, pid: 42 }) }, null))
      .toMatchObject({ pid: 42, uid: 1000, client: 'c3' });
    const own = snoopLine({ ...rec, origin: {} }, null);
    expect(own).toMatchObject({ pid: null, client: 'daemon' });
    expect('uid' in own).toBe(false);
  });
});

describe('definitionAccess', () => {
  const member: Caller = { client: 'c', uid: Nobody, gid: Nobody, pid: 1, gids: [Nobody] };

  it('makes a definition that passes arguments or environment to QEMU an admin matter', () => {
    expect(definitionAccess({ text: 'name: a\nmemory: 64MiB\n' }, member)).toBe('write');
    expect(definitionAccess({ text: 'name: a\nmemory: 64MiB\nqemu: {args: [-no-hpet]}\n' }, member)).toBe('admin');
    expect(definitionAccess({ text: '{"name": "a", "memory": "64MiB", "qemu": {"env": {"A": "b"}}}', format: 'json' }, member)).toBe('admin');
    expect(definitionAccess({ text: 'name: a\nmemory: 64MiB\nqemu: {args: [], env: {}}\n' }, member)).toBe('write');
    // What the parser refuses is refused as definition.invalid by the handler: no escalation.
    expect(definitionAccess({ text: 'memory: [' }, member)).toBe('write');
  });

  it('makes naming a host file the caller may not have QEMU open an admin matter', () => {
    const boot = (kernel: string, initrd?: string): string =>
      `name: a\nmemory: 64MiB\nboot: {loader: direct, kernel: ${kernel}${initrd ? `, initrd: ${initrd}` : ''}}\n`;
    // /etc/hostname: root's, 0644, in root's directories.
    expect(definitionAccess({ text: boot('/etc/hostname') }, member)).toBe('write');
    expect(definitionAccess({ text: boot('/etc/hostname', '/etc/shadow') }, member)).toBe('admin');
    expect(definitionAccess({ text: 'name: a\nmemory: 64MiB\ndisks: [{source: /etc/hostname, format: raw, readonly: true}]\n' }, member)).toBe('write');
    // A disk QEMU would write is a pool volume for a non-admin, whatever the file.
    expect(definitionAccess({ text: 'name: a\nmemory: 64MiB\ndisks: [{source: /etc/hostname, format: raw}]\n' }, member)).toBe('admin');
    expect(definitionAccess({ text: 'name: a\nmemory: 64MiB\ndisks: [{volume: p/v.qcow2, format: qcow2}]\n' }, member)).toBe('write');
    expect(definitionAccess({ text: boot('/etc/hostname') }, { client: 'c' })).toBe('admin');
  });
});

describe('the access policy by group', () => {
  let dir: string;
  let files: { passwd: string; group: string };
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vk-groups-'));
    files = { passwd: join(dir, 'passwd'), group: join(dir, 'group') };
    await writeFile(files.passwd, [
      'root:x:0:0:root:/root:/bin/bash', 'alice:x:1001:1001::/home/alice:/bin/sh', 'bob:x:1002:1002::/home/bob:/bin/sh',
      'carol:x:1003:1003::/home/carol:/bin/sh', 'dave:x:1004:1004::/home/dave:/bin/sh', 'alias-of-dave:x:1004:1004::/:/bin/sh', '',
    ].join('\n'));
    await writeFile(files.group, [
      'root:x:0:', 'vkusers:x:2000:alice,carol', 'vkadmins:x:2001:carol, alias-of-dave', 'other:x:2002:bob', '# no comment syntax, a broken line', '',
    ].join('\n'));
  });
  afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

  const caller = (uid: number, gid = uid): Caller => ({ client: 'c', uid, gid, pid: 1 });

  it('gives root and the daemon\'s own user everything, socket group members read and write, admin group members everything', () => {
    const groups = new GroupDatabase(files);
    const policy = new AccessPolicy({ socketGid: groups.gidOf('vkusers'), adminGid: groups.gidOf('vkadmins'), daemonUid: 999, groups });
    expect(policy.classesOf(caller(0, 5))).toEqual(['read', 'write', 'admin']);
    expect(policy.classesOf(caller(999))).toEqual(['read', 'write', 'admin']);
    expect(policy.classesOf(caller(1001))).toEqual(['read', 'write']);
    // carol is in both groups; dave is an admin through another name of his uid.
    expect(policy.classesOf(caller(1003))).toEqual(['read', 'write', 'admin']);
    expect(policy.classesOf(caller(1004))).toEqual(['read', 'write', 'admin']);
    expect(policy.classesOf(caller(1002))).toEqual([]);
    expect(policy.classesOf({})).toEqual([]);
  });

  it('counts the gid the kernel reports as membership, whatever /etc/group says', () => {
    const groups = new GroupDatabase(files);
    const policy = new AccessPolicy({ socketGid: 2000, adminGid: 2001, daemonUid: 999, groups });
    expect(policy.classesOf(caller(1002, 2000))).toEqual(['read', 'write']);
    expect(policy.classesOf(caller(1002, 2001))).toEqual(['read', 'write', 'admin']);
    // A uid the files do not know at all is judged by its gid alone.
    expect(policy.classesOf(caller(4242, 2000))).toEqual(['read', 'write']);
    expect(policy.classesOf(caller(4242, 4242))).toEqual([]);
  });

  it('gives nobody but root and the daemon\'s user anything without groups', () => {
    const policy = new AccessPolicy({ daemonUid: 999, groups: new GroupDatabase(files) });
    expect(policy.classesOf(caller(1001, 2000))).toEqual([]);
    expect(policy.classesOf(caller(999))).toEqual(['read', 'write', 'admin']);
  });

  it('reads the files again when they change, so membership changes reach the next connection', async () => {
    const groups = new GroupDatabase(files);
    const policy = new AccessPolicy({ socketGid: 2000, daemonUid: 999, groups });
    expect(policy.classesOf(caller(1002))).toEqual([]);
    const before = await readFile(files.group, 'utf8');
    try {
      await writeFile(files.group, before.replace('vkusers:x:2000:alice,carol', 'vkusers:x:2000:alice,carol,bob'));
      expect(policy.classesOf(caller(1002))).toEqual(['read', 'write']);
    } finally {
      await writeFile(files.group, before);
    }
    expect(policy.classesOf(caller(1002))).toEqual([]);
  });

  it('resolves group names and numbers, and refuses an unknown name as argument.invalid', () => {
    const groups = new GroupDatabase(files);
    expect(groups.gidOf('vkadmins')).toBe(2001);
    expect(groups.gidOf('31337')).toBe(31337);
    expect(() => groups.gidOf('nosuchgroup')).toThrow(expect.objectContaining({ code: 'argument.invalid' }) as Error);
    expect([...groups.supplementaryGids(1003)].sort()).toEqual([2000, 2001]);
  });

  it('decides once per connection: an identified caller keeps its classes', () => {
    const groups = new GroupDatabase(files);
    const policy = new AccessPolicy({ socketGid: 2000, daemonUid: 999, groups });
    expect(accessClassesOf({ ...caller(1002), classes: ['read'] }, policy)).toEqual(['read']);
    expect(accessClassesOf(caller(1001), policy)).toEqual(['read', 'write']);
    // Without a policy, the owner-only one.
    expect(accessClassesOf(caller(1001, 2000))).toEqual([]);
  });
});
