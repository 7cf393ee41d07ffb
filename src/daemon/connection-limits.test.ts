/**
 * The connection limits on a real HTTP server over a unix socket (the daemon's fastify app
 * with short limits): what the idle timeout closes and what it spares, the total cap, the
 * per-uid gate; and the parser-error replies as data. Waits are bounded polls on events,
 * never assertions on durations.
 */
import { EventEmitter } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ConnectionGate, DefaultConnectionLimits, ReservedDescriptors, effectiveMaxConnections, openFilesLimit, throttledWarning,
  type ConnectionLimits,
} from './connection-limits.js';
import { MaxRequestLineBytes, clientErrorReply } from './http-errors.js';
import { createApp } from './server.js';

const Limits: ConnectionLimits = { ...DefaultConnectionLimits, idleTimeoutMs: 200, headersTimeoutMs: 1_000, maxConnections: 3 };

async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

function open(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = netConnect(path);
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

function closed(s: Socket): Promise<void> {
  return new Promise((resolve) => { if (s.destroyed) resolve(); else s.once('close', () => resolve()); });
}

describe('the idle timeout on a real server', () => {
  let dir: string;
  let app: FastifyInstance;
  let socketPath: string;
  const warnings: string[] = [];
  let releaseLong: () => void = () => undefined;
  const uploadClosed: boolean[] = [];
  const downloadClosed: boolean[] = [];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vk-limits-'));
    socketPath = join(dir, 's');
    app = createApp(false, Limits);
    app.server.on('drop', () => warnings.push('drop'));
    // A long operation: answers when the test says so, many idle timeouts later.
    app.get('/long', async () => {
      await new Promise<void>((resolve) => { releaseLong = resolve; });
      return { done: true };
    });
    // An upload: reads the body to its end.
    app.addContentTypeParser('application/octet-stream', (_req, payload, done) => { done(null, payload); });
    app.put('/upload', async (req) => {
      req.raw.once('close', () => uploadClosed.push(true));
      let bytes = 0;
      for await (const chunk of req.body as AsyncIterable<Buffer>) bytes += chunk.length;
      return { bytes };
    });
    // A download larger than the socket buffers.
    app.get('/download', (_req, reply) => {
      reply.raw.once('close', () => downloadClosed.push(true));
      void reply.send(Buffer.alloc(16 * 1024 * 1024, 1));
    });
    await app.listen({ path: socketPath });
  });

  afterEach(async () => {
    releaseLong();
    await app.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('closes a connection that sends nothing', async () => {
    const s = await open(socketPath);
    await closed(s);
    expect(s.destroyed).toBe(true);
  });

  it('spares a request waiting for a long operation, and answers it', async () => {
    const s = await open(socketPath);
    let text = '';
    s.on('data', (c: Buffer) => { text += c.toString(); });
    s.write('GET /long HTTP/1.1\r\nhost: x\r\n\r\n');
    // Several idle timeouts pass with nothing on the wire.
    for (let i = 0; i < 5; i++) await sleep(Limits.idleTimeoutMs);
    expect(s.destroyed).toBe(false);
    releaseLong();
    await until('the answer', () => text.includes('{"done":true}'));
    expect(text).toMatch(/^HTTP\/1\.1 200/);
    // Answered, the connection is idle again, and is closed.
    await closed(s);
  });

  it('cuts an upload whose body stops arriving', async () => {
    const s = await open(socketPath);
    s.on('error', () => undefined);
    s.write('PUT /upload HTTP/1.1\r\nhost: x\r\ncontent-type: application/octet-stream\r\ncontent-length: 1000000\r\n\r\n');
    s.write(Buffer.alloc(1000, 2));
    await closed(s);
    await until('the handler to see the request end', () => uploadClosed.length > 0);
  });

  it('cuts a reader that stopped reading', async () => {
    const s = await open(socketPath);
    s.on('error', () => undefined);
    s.write('GET /download HTTP/1.1\r\nhost: x\r\n\r\n');
    s.pause();
    await until('the server to give up on the response', () => downloadClosed.length > 0);
    s.destroy();
  });

  it('closes connections beyond the total cap at accept', async () => {
    const held = await Promise.all([open(socketPath), open(socketPath), open(socketPath)]);
    const extra = await open(socketPath);
    await closed(extra);
    await until('the drop event', () => warnings.includes('drop'));
    for (const s of held) s.destroy();
  });
});

describe('ConnectionGate', () => {
  const fakeSocket = (): Socket => new EventEmitter() as unknown as Socket;

  it('refuses the connection over a uid\'s limit with connection.limit, and frees the slot on close', () => {
    const logged: unknown[] = [];
    const gate = new ConnectionGate({ ...DefaultConnectionLimits, maxUserConnections: 2, maxOwnerConnections: 3 }, [0], (f) => logged.push(f));
    const a = fakeSocket();
    expect(gate.admit(a, 1000)).toBeUndefined();
    expect(gate.admit(fakeSocket(), 1000)).toBeUndefined();
    const third = fakeSocket();
    const refusal = gate.admit(third, 1000);
    expect(refusal?.code).toBe('connection.limit');
    expect(refusal?.data).toMatchObject({ uid: 1000, limit: 2 });
    expect(gate.refusalOf(third)).toBe(refusal);
    expect(gate.refusalOf(a)).toBeUndefined();
    expect(logged).toHaveLength(1);
    // Another uid has its own count; the owner its higher limit.
    expect(gate.admit(fakeSocket(), 1001)).toBeUndefined();
    for (let i = 0; i < 3; i++) expect(gate.admit(fakeSocket(), 0)).toBeUndefined();
    expect(gate.admit(fakeSocket(), 0)?.code).toBe('connection.limit');

    (a as unknown as EventEmitter).emit('close');
    expect(gate.connectionsOf(1000)).toBe(1);
    expect(gate.admit(fakeSocket(), 1000)).toBeUndefined();
  });

  it('counts unidentified callers together, under the ordinary limit', () => {
    const gate = new ConnectionGate({ ...DefaultConnectionLimits, maxUserConnections: 1 }, [0], () => undefined);
    expect(gate.admit(fakeSocket(), undefined)).toBeUndefined();
    expect(gate.admit(fakeSocket(), undefined)?.message).toContain('an unidentified caller');
  });
});

describe('limits as data', () => {
  it('reads the open-files limit and keeps the total cap below it', () => {
    const text = 'Limit                     Soft Limit           Hard Limit           Units     \nMax open files            1024                 4096                 files     \n';
    expect(openFilesLimit(text)).toBe(1024);
    expect(openFilesLimit('Max open files            unlimited            unlimited            files\n')).toBeUndefined();
    expect(effectiveMaxConnections({ ...DefaultConnectionLimits, maxConnections: 4096 }, 1024)).toBe(1024 - ReservedDescriptors);
    expect(effectiveMaxConnections({ ...DefaultConnectionLimits, maxConnections: 100 }, 20_000)).toBe(100);
    expect(typeof openFilesLimit()).toBe('number');
  });

  it('logs a repeated warning once per interval, with the count it held back', () => {
    const lines: Record<string, unknown>[] = [];
    const warn = throttledWarning((f) => lines.push(f), 60_000);
    for (let i = 0; i < 5; i++) warn({ n: i }, 'x');
    expect(lines).toEqual([{ n: 0 }]);
  });

  it('maps what Node\'s parser rejects to statuses and envelopes', () => {
    const longLine = Buffer.from(`GET /${'a'.repeat(MaxRequestLineBytes + 10)}`);
    expect(clientErrorReply({ code: 'HPE_HEADER_OVERFLOW', rawPacket: longLine }, 1000)).toMatchObject({ status: 414, error: { code: 'request.too-large' } });
    const bigHeader = Buffer.from(`GET / HTTP/1.1\r\nx: ${'b'.repeat(20_000)}`);
    expect(clientErrorReply({ code: 'HPE_HEADER_OVERFLOW', rawPacket: bigHeader }, 1000)).toMatchObject({ status: 431, error: { code: 'request.too-large' } });
    expect(clientErrorReply({ code: 'HPE_HEADER_OVERFLOW' }, 1000)?.status).toBe(431);
    expect(clientErrorReply({ code: 'ERR_HTTP_REQUEST_TIMEOUT' }, 1000)).toMatchObject({ status: 408, error: { code: 'request.invalid' } });
    expect(clientErrorReply({ code: 'HPE_INVALID_METHOD' }, 1000)).toMatchObject({ status: 400, error: { code: 'request.invalid' } });
    expect(clientErrorReply({ code: 'HPE_INVALID_URL', reason: 'Invalid URL' }, 1000)).toMatchObject({ status: 400, error: { message: 'malformed HTTP request: Invalid URL' } });
    expect(clientErrorReply({ code: 'ECONNRESET' }, 1000)).toBeUndefined();
  });
});
