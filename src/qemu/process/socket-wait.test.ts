import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { connectWhenCreated, notListeningYet } from './socket-wait.js';

function connectUnix(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

describe('connectWhenCreated', () => {
  let dir: string;
  const servers: Server[] = [];
  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'virtkit-socket-wait-')); });
  afterEach(async () => {
    for (const s of servers.splice(0)) s.close();
    await rm(dir, { recursive: true, force: true });
  });

  const never = { deadline: Date.now() + 60_000, giveUp: () => undefined, timedOut: () => new Error('timed out'), notYet: notListeningYet };

  it('connects when the socket is created, woken by the directory watch (no timer would fire in time)', async () => {
    const path = join(dir, 'qmp.sock');
    let attempts = 0;
    // A fallback longer than the test's own timeout: only the change notice can wake the wait.
    const connecting = connectWhenCreated(path, () => { attempts++; return connectUnix(path); }, { ...never, fallbackMs: 3_600_000 });
    await new Promise((r) => setTimeout(r, 100));
    const server = createServer((c) => c.end('hello'));
    servers.push(server);
    await new Promise<void>((r) => server.listen(path, r));
    const sock = await connecting;
    const greeting = await new Promise<string>((r) => sock.once('data', (d: Buffer) => r(d.toString())));
    sock.destroy();
    expect(greeting).toBe('hello');
    // once at the start, then on the notices of the new name (and none in between)
    expect(attempts).toBeGreaterThanOrEqual(2);
    expect(attempts).toBeLessThan(20);
  });

  it('connects at once to a socket that exists, and other sockets of the directory do not count', async () => {
    const path = join(dir, 'console.sock');
    const other = createServer();
    servers.push(other);
    await new Promise<void>((r) => other.listen(join(dir, 'other.sock'), r));
    const server = createServer();
    servers.push(server);
    await new Promise<void>((r) => server.listen(path, r));
    let attempts = 0;
    const sock = await connectWhenCreated(path, () => { attempts++; return connectUnix(path); }, never);
    sock.destroy();
    expect(attempts).toBe(1);
  });

  it('gives up with the caller\'s reason, and throws what is not "not there yet" as it is', async () => {
    const path = join(dir, 'never.sock');
    await expect(connectWhenCreated(path, () => connectUnix(path), { ...never, giveUp: () => new Error('QEMU exited') })).rejects.toThrow('QEMU exited');
    await expect(connectWhenCreated(path, () => connectUnix(path), { ...never, deadline: Date.now() - 1 })).rejects.toThrow('timed out');
    const odd = Object.assign(new Error('permission denied'), { code: 'EACCES' });
    await expect(connectWhenCreated(path, () => Promise.reject(odd), never)).rejects.toBe(odd);
  });
});

describe('notListeningYet', () => {
  it('reads the errno of the error or of its causes', () => {
    const enoent = Object.assign(new Error('x'), { code: 'ENOENT' });
    const refused = Object.assign(new Error('y'), { code: 'ECONNREFUSED' });
    expect(notListeningYet(enoent)).toBe('missing');
    expect(notListeningYet(new Error('wrapped', { cause: refused }))).toBe('refused');
    expect(notListeningYet(new Error('other'))).toBeUndefined();
    expect(notListeningYet('text')).toBeUndefined();
  });
});
