import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawImage } from '../image/raw.js';
import { ByteReader } from './byte-reader.js';
import {
  ChunkType, Command, CommandFlag, IHAVEOPT, InfoType, NBD_MAGIC, NbdErrno, Option, OPTION_REPLY_MAGIC, OptionReply,
  REQUEST_MAGIC, SIMPLE_REPLY_MAGIC, STRUCTURED_REPLY_MAGIC, TransmissionFlag,
} from './protocol.js';
import { Duplex } from 'node:stream';
import { serveConnection } from './connection.js';
import { NbdServer, nbdUri } from './server.js';
import type { VirtkitError } from '../../util/errors.js';

/** A minimal NBD client over a real unix socket, enough to poke at each protocol rule. */
class TestClient {
  private constructor(readonly sock: Socket, readonly reader: ByteReader) {}

  static async open(path: string, clientFlags = 3): Promise<TestClient> {
    const sock = connect(path);
    await new Promise<void>((resolve, reject) => sock.once('connect', resolve).once('error', reject));
    const c = new TestClient(sock, new ByteReader(sock));
    const greeting = await c.reader.read(18);
    expect(greeting.readBigUInt64BE(0)).toBe(NBD_MAGIC);
    expect(greeting.readBigUInt64BE(8)).toBe(IHAVEOPT);
    expect(greeting.readUInt16BE(16)).toBe(3);
    const flags = Buffer.alloc(4);
    flags.writeUInt32BE(clientFlags);
    sock.write(flags);
    return c;
  }

  option(option: number, data: Buffer = Buffer.alloc(0)): void {
    const head = Buffer.alloc(16);
    head.writeBigUInt64BE(IHAVEOPT, 0);
    head.writeUInt32BE(option, 8);
    head.writeUInt32BE(data.length, 12);
    this.sock.write(Buffer.concat([head, data]));
  }

  async optionReply(): Promise<{ option: number; type: number; data: Buffer }> {
    const head = await this.reader.read(20);
    expect(head.readBigUInt64BE(0)).toBe(OPTION_REPLY_MAGIC);
    const data = Buffer.from(await this.reader.read(head.readUInt32BE(16)));
    return { option: head.readUInt32BE(8), type: head.readUInt32BE(12), data };
  }

  /** Replies until the ACK (or an error), inclusive. */
  async optionReplies(): Promise<{ option: number; type: number; data: Buffer }[]> {
    const all = [];
    for (;;) {
      const r = await this.optionReply();
      all.push(r);
      if (r.type === OptionReply.ack || r.type >= 0x80000000) return all;
    }
  }

  /** NBD_OPT_STRUCTURED_REPLY, SET_META_CONTEXT base:allocation, GO; returns the transmission flags. */
  async go(opts: { structured?: boolean; name?: string } = {}): Promise<number> {
    if (opts.structured) {
      this.option(Option.structuredReply);
      expect((await this.optionReply()).type).toBe(OptionReply.ack);
      this.option(Option.setMetaContext, metaContextRequest(opts.name ?? '', ['base:allocation']));
      const r = await this.optionReplies();
      expect(r.map((x) => x.type)).toEqual([OptionReply.metaContext, OptionReply.ack]);
    }
    this.option(Option.go, infoRequest(opts.name ?? '', [InfoType.blockSize]));
    const replies = await this.optionReplies();
    expect(replies.at(-1)!.type).toBe(OptionReply.ack);
    const exp = replies.find((r) => r.type === OptionReply.info && r.data.readUInt16BE(0) === InfoType.export)!;
    return exp.data.readUInt16BE(10);
  }

  request(type: number, offset: number, length: number, opts: { flags?: number; cookie?: number; payload?: Buffer } = {}): void {
    const head = Buffer.alloc(28);
    head.writeUInt32BE(REQUEST_MAGIC, 0);
    head.writeUInt16BE(opts.flags ?? 0, 4);
    head.writeUInt16BE(type, 6);
    head.writeBigUInt64BE(BigInt(opts.cookie ?? 1), 8);
    head.writeBigUInt64BE(BigInt(offset), 16);
    head.writeUInt32BE(length, 24);
    this.sock.write(opts.payload ? Buffer.concat([head, opts.payload]) : head);
  }

  async simpleReply(dataLength = 0): Promise<{ error: number; cookie: number; data: Buffer }> {
    const head = await this.reader.read(16);
    expect(head.readUInt32BE(0)).toBe(SIMPLE_REPLY_MAGIC);
    const error = head.readUInt32BE(4);
    const data = error === 0 && dataLength ? Buffer.from(await this.reader.read(dataLength)) : Buffer.alloc(0);
    return { error, cookie: Number(head.readBigUInt64BE(8)), data };
  }

  /** The error number of a reply without data, whichever reply form the server chose. */
  async status(): Promise<number> {
    const magic = (await this.reader.read(4)).readUInt32BE(0);
    if (magic === SIMPLE_REPLY_MAGIC) return (await this.reader.read(12)).readUInt32BE(0);
    expect(magic).toBe(STRUCTURED_REPLY_MAGIC);
    const rest = await this.reader.read(16);
    const payload = await this.reader.read(rest.readUInt32BE(12));
    return rest.readUInt16BE(2) === ChunkType.error ? payload.readUInt32BE(0) : 0;
  }

  async chunk(): Promise<{ flags: number; type: number; cookie: number; payload: Buffer }> {
    const head = await this.reader.read(20);
    expect(head.readUInt32BE(0)).toBe(STRUCTURED_REPLY_MAGIC);
    const payload = Buffer.from(await this.reader.read(head.readUInt32BE(16)));
    return { flags: head.readUInt16BE(4), type: head.readUInt16BE(6), cookie: Number(head.readBigUInt64BE(8)), payload };
  }

  /** All chunks of one reply (no other request may be in flight). */
  async structuredReply(): Promise<{ flags: number; type: number; cookie: number; payload: Buffer }[]> {
    const chunks = [];
    for (;;) {
      const c = await this.chunk();
      chunks.push(c);
      if (c.flags & 1) return chunks;
    }
  }

  close(): void {
    this.sock.destroy();
  }
}

function infoRequest(name: string, requests: number[]): Buffer {
  const n = Buffer.from(name);
  const b = Buffer.alloc(4 + n.length + 2 + 2 * requests.length);
  b.writeUInt32BE(n.length, 0);
  n.copy(b, 4);
  b.writeUInt16BE(requests.length, 4 + n.length);
  requests.forEach((r, i) => b.writeUInt16BE(r, 6 + n.length + 2 * i));
  return b;
}

function metaContextRequest(name: string, queries: string[]): Buffer {
  const parts = [Buffer.alloc(4), Buffer.from(name), Buffer.alloc(4)];
  parts[0]!.writeUInt32BE(Buffer.byteLength(name));
  parts[2]!.writeUInt32BE(queries.length);
  for (const q of queries) {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(Buffer.byteLength(q));
    parts.push(len, Buffer.from(q));
  }
  return Buffer.concat(parts);
}

/** Byte comparison without a deep-equality walk (slow on megabytes); reports the first difference. */
function expectSameBytes(got: Uint8Array, want: Uint8Array): void {
  const a = Buffer.from(got.buffer, got.byteOffset, got.byteLength);
  const b = Buffer.from(want.buffer, want.byteOffset, want.byteLength);
  if (a.equals(b)) return;
  let i = 0;
  while (i < Math.min(a.length, b.length) && a[i] === b[i]) i++;
  expect({ length: a.length, firstDifference: i }).toEqual({ length: b.length, firstDifference: -1 });
}

const SIZE = 1024 * 1024 + 512; // not a multiple of the overlay's cluster size on purpose
let dir: string;
let image: Buffer;
let device: RawImage;
let readOnly: NbdServer;
let snapshot: NbdServer;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nbd-test-'));
  image = Buffer.alloc(SIZE);
  for (let i = 0; i < SIZE; i++) image[i] = (i * 7 + (i >> 9)) & 0xff;
  await writeFile(join(dir, 'disk.raw'), image);
  device = await RawImage.open(join(dir, 'disk.raw'));
  readOnly = await NbdServer.start({ device, listen: { kind: 'unix', path: join(dir, 'ro.sock') }, mode: 'read-only', shared: 4 });
  snapshot = await NbdServer.start({
    device, listen: { kind: 'unix', path: join(dir, 'snap.sock') }, mode: 'snapshot', exportName: 'snap', shared: 4,
  });
});

afterAll(async () => {
  await readOnly?.close();
  await snapshot?.close();
  await device?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('nbdUri', () => {
  it('builds the URIs qemu parses, escaping what a URI cannot carry', () => {
    expect(nbdUri({ kind: 'unix', path: '/run/a b#c.sock' }, '')).toBe('nbd+unix:///?socket=/run/a%20b%23c.sock');
    expect(nbdUri({ kind: 'tcp', host: '127.0.0.1', port: 10809 }, 'disk 1')).toBe('nbd://127.0.0.1:10809/disk%201');
    expect(nbdUri({ kind: 'tcp', host: '::1', port: 1 }, '')).toBe('nbd://[::1]:1/');
  });
});

describe('option haggling', () => {
  it('lists the export, refuses unknown options, answers NBD_OPT_INFO', async () => {
    const c = await TestClient.open(join(dir, 'snap.sock'));
    c.option(Option.list);
    const list = await c.optionReplies();
    expect(list.map((r) => r.type)).toEqual([OptionReply.server, OptionReply.ack]);
    expect(list[0]!.data.subarray(4).toString()).toBe('snap');

    c.option(0x4242, Buffer.from('whatever'));
    const unknown = await c.optionReply();
    expect(unknown).toMatchObject({ option: 0x4242, type: OptionReply.errUnsup });

    c.option(Option.startTls);
    expect((await c.optionReply()).type).toBe(OptionReply.errUnsup);

    c.option(Option.info, infoRequest('nope', []));
    expect((await c.optionReply()).type).toBe(OptionReply.errUnknown);

    c.option(Option.info, Buffer.from([0, 0, 0, 9, 1])); // name length past the payload
    expect((await c.optionReply()).type).toBe(OptionReply.errInvalid);

    c.option(Option.info, infoRequest('snap', [InfoType.name]));
    const info = await c.optionReplies();
    const exp = info.find((r) => r.data.readUInt16BE(0) === InfoType.export)!;
    expect(Number(exp.data.readBigUInt64BE(2))).toBe(SIZE);
    expect(exp.data.readUInt16BE(10) & TransmissionFlag.readOnly).toBe(0);
    const bs = info.find((r) => r.data.readUInt16BE(0) === InfoType.blockSize)!;
    expect([bs.data.readUInt32BE(2), bs.data.readUInt32BE(10)]).toEqual([1, 32 * 1024 * 1024]);
    expect(info.find((r) => r.data.readUInt16BE(0) === InfoType.name)!.data.subarray(2).toString()).toBe('snap');

    // Meta contexts need structured replies first.
    c.option(Option.setMetaContext, metaContextRequest('snap', ['base:allocation']));
    expect((await c.optionReply()).type).toBe(OptionReply.errInvalid);
    c.option(Option.structuredReply);
    expect((await c.optionReply()).type).toBe(OptionReply.ack);
    c.option(Option.listMetaContext, metaContextRequest('snap', []));
    const listed = await c.optionReplies();
    expect(listed[0]!.data.subarray(4).toString()).toBe('base:allocation');
    c.option(Option.setMetaContext, metaContextRequest('snap', ['qemu:dirty-bitmap:x']));
    expect((await c.optionReplies()).map((r) => r.type)).toEqual([OptionReply.ack]);

    c.option(Option.abort);
    expect((await c.optionReply()).type).toBe(OptionReply.ack);
    c.close();
  });

  it('answers an oversized option with NBD_REP_ERR_TOO_BIG without buffering it', async () => {
    const c = await TestClient.open(join(dir, 'ro.sock'));
    c.option(Option.list, Buffer.alloc(1024 * 1024));
    expect((await c.optionReply()).type).toBe(OptionReply.errTooBig);
    c.option(Option.list);
    expect((await c.optionReplies()).at(-1)!.type).toBe(OptionReply.ack);
    c.close();
  });

  it('enters transmission with NBD_OPT_EXPORT_NAME and the zero padding unless NO_ZEROES', async () => {
    const c = await TestClient.open(join(dir, 'ro.sock'), 1);
    c.option(Option.exportName);
    const tail = await c.reader.read(134);
    expect(Number(tail.readBigUInt64BE(0))).toBe(SIZE);
    expect(tail.readUInt16BE(8) & TransmissionFlag.readOnly).toBeTruthy();
    expect(tail.subarray(10).every((b) => b === 0)).toBe(true);
    c.request(Command.read, 512, 100);
    expect((await c.simpleReply(100)).data).toEqual(image.subarray(512, 612));
    c.close();
  });

  it('drops a client that does not finish the handshake in time, with a typed error', async () => {
    const stream = new Duplex({ read() {}, write(_c, _e, cb) { cb(); } });
    const outcome = await serveConnection(stream, { name: '', device, multiConn: false }, { handshakeTimeoutMs: 50 })
      .then((end) => end, (err: VirtkitError) => err.code);
    expect(outcome).toBe('nbd.protocol');
    expect(stream.destroyed).toBe(true);
  });

  it('closes the connection when NBD_OPT_EXPORT_NAME names an unknown export', async () => {
    const c = await TestClient.open(join(dir, 'ro.sock'));
    c.option(Option.exportName, Buffer.from('nope'));
    await new Promise((resolve) => c.sock.once('close', resolve));
  });
});

describe('transmission', () => {
  it('serves pipelined simple reads, each reply matching its cookie', async () => {
    const c = await TestClient.open(join(dir, 'ro.sock'));
    await c.go();
    const n = 50;
    const reqs = Array.from({ length: n }, (_, i) => ({ cookie: 1000 + i, offset: (i * 20011) % (SIZE - 8192), length: 1 + ((i * 977) % 8192) }));
    for (const r of reqs) c.request(Command.read, r.offset, r.length, { cookie: r.cookie });
    const byCookie = new Map(reqs.map((r) => [r.cookie, r]));
    for (let i = 0; i < n; i++) {
      const head = await c.reader.read(16);
      expect(head.readUInt32BE(4)).toBe(0);
      const r = byCookie.get(Number(head.readBigUInt64BE(8)))!;
      byCookie.delete(r.cookie);
      expectSameBytes(await c.reader.read(r.length), image.subarray(r.offset, r.offset + r.length));
    }
    expect(byCookie.size).toBe(0);
    c.request(Command.disc, 0, 0);
    await new Promise((resolve) => c.sock.once('close', resolve));
  });

  it('refuses writes on a read-only export, out-of-range and oversized requests, then keeps serving', async () => {
    const c = await TestClient.open(join(dir, 'ro.sock'));
    await c.go();
    c.request(Command.write, 0, 4096, { payload: Buffer.alloc(4096, 1), cookie: 2 });
    expect(await c.simpleReply()).toMatchObject({ error: NbdErrno.perm, cookie: 2 });
    c.request(Command.writeZeroes, 0, 4096);
    expect((await c.simpleReply()).error).toBe(NbdErrno.perm);
    c.request(Command.read, SIZE - 10, 11);
    expect((await c.simpleReply()).error).toBe(NbdErrno.inval);
    c.request(Command.read, 2 ** 63, 1);
    expect((await c.simpleReply()).error).toBe(NbdErrno.inval);
    c.request(Command.read, 0, 0xffffffff);
    expect((await c.simpleReply()).error).toBe(NbdErrno.inval);
    c.request(Command.read, 0, 64 * 1024 * 1024 + 1);
    expect((await c.simpleReply()).error).toBe(NbdErrno.inval); // outside the 1 MiB export first
    c.request(Command.read, 0, 8, { flags: 0x8000 });
    expect((await c.simpleReply()).error).toBe(NbdErrno.inval);
    c.request(Command.blockStatus, 0, 8);
    expect((await c.simpleReply()).error).toBe(NbdErrno.inval); // no meta context
    c.request(99, 0, 0);
    expect((await c.simpleReply()).error).toBe(NbdErrno.inval);
    c.request(Command.read, SIZE - 8, 8);
    expect((await c.simpleReply(8)).data).toEqual(image.subarray(SIZE - 8));
    c.close();
  });

  it('skips the payload of an oversized write and answers EOVERFLOW', async () => {
    const c = await TestClient.open(join(dir, 'snap.sock'));
    await c.go({ name: 'snap' });
    // Larger than the 32 MiB limit: the server must skip it, not buffer it.
    const big = 33 * 1024 * 1024;
    c.request(Command.write, 0, big, { cookie: 5 });
    const zeros = Buffer.alloc(1024 * 1024);
    for (let sent = 0; sent < big; sent += zeros.length) {
      if (!c.sock.write(zeros)) await new Promise((resolve) => c.sock.once('drain', resolve));
    }
    expect(await c.simpleReply()).toMatchObject({ error: NbdErrno.overflow, cookie: 5 });
    c.request(Command.read, 0, 16, { cookie: 6 });
    expect(await c.simpleReply(16)).toMatchObject({ cookie: 6, data: image.subarray(0, 16) });
    c.close();
  });

  it('keeps snapshot writes in the overlay, reports zeros as holes, and never touches the image', async () => {
    const c = await TestClient.open(join(dir, 'snap.sock'));
    const flags = await c.go({ structured: true, name: 'snap' });
    expect(flags & TransmissionFlag.readOnly).toBe(0);
    expect(flags & TransmissionFlag.sendWriteZeroes).toBeTruthy();

    c.request(Command.write, 70_000, 5, { payload: Buffer.from('hello') });
    expect(await c.status()).toBe(0);
    c.request(Command.writeZeroes, 128 * 1024, 256 * 1024);
    expect(await c.status()).toBe(0);
    c.request(Command.write, SIZE - 3, 4, { payload: Buffer.from('tail') });
    expect(await c.status()).toBe(NbdErrno.nospc);
    c.request(Command.write, SIZE - 4, 4, { payload: Buffer.from('tail') });
    expect(await c.status()).toBe(0);
    c.request(Command.flush, 0, 0);
    expect(await c.status()).toBe(0);

    const expected = Buffer.from(image);
    expected.write('hello', 70_000);
    expected.fill(0, 128 * 1024, 384 * 1024);
    expected.write('tail', SIZE - 4);

    // A structured read over the zeroed range comes back as data, hole, data chunks.
    c.request(Command.read, 64 * 1024, 384 * 1024, { cookie: 9 });
    const chunks = await c.structuredReply();
    expect(chunks.map((ch) => ch.type)).toEqual([ChunkType.offsetData, ChunkType.offsetHole, ChunkType.offsetData]);
    const got = Buffer.alloc(384 * 1024, 0xee);
    for (const ch of chunks) {
      const off = Number(ch.payload.readBigUInt64BE(0)) - 64 * 1024;
      if (ch.type === ChunkType.offsetData) ch.payload.copy(got, off, 8);
      else got.fill(0, off, off + ch.payload.readUInt32BE(8));
    }
    expectSameBytes(got, expected.subarray(64 * 1024, 448 * 1024));

    c.request(Command.read, 0, SIZE, { flags: CommandFlag.df });
    const whole = await c.structuredReply();
    expect(whole).toHaveLength(1);
    expectSameBytes(whole[0]!.payload.subarray(8), expected);

    c.request(Command.blockStatus, 0, SIZE);
    const [status] = await c.structuredReply();
    expect(status!.type).toBe(ChunkType.blockStatus);
    const descriptors = [];
    for (let at = 4; at < status!.payload.length; at += 8) {
      descriptors.push([status!.payload.readUInt32BE(at), status!.payload.readUInt32BE(at + 4)]);
    }
    expect(descriptors).toEqual([[128 * 1024, 0], [256 * 1024, 2], [SIZE - 384 * 1024, 0]]);
    c.request(Command.blockStatus, 0, SIZE, { flags: CommandFlag.reqOne });
    expect((await c.structuredReply())[0]!.payload.length).toBe(12);

    // Errors on reads are structured error chunks once structured replies are on.
    c.request(Command.read, SIZE, 1);
    const [err] = await c.structuredReply();
    expect(err!.type).toBe(ChunkType.error);
    expect(err!.payload.readUInt32BE(0)).toBe(NbdErrno.inval);
    c.close();

    // The overlay belongs to the server: a second client sees the writes; the file does not.
    const d = await TestClient.open(join(dir, 'snap.sock'));
    await d.go({ name: 'snap' });
    d.request(Command.read, 70_000, 5);
    expect((await d.simpleReply(5)).data.toString()).toBe('hello');
    d.close();
    expectSameBytes(await device.read(70_000, 5), image.subarray(70_000, 70_005));
  });

  it('makes a client beyond --shared wait for a free slot', async () => {
    const path = join(dir, 'one.sock');
    const one = await NbdServer.start({ device, listen: { kind: 'unix', path }, mode: 'read-only' });
    try {
      const first = await TestClient.open(path);
      await first.go();
      const second = connect(path);
      let received = 0;
      second.on('data', (d: Buffer) => (received += d.length));
      // A full round trip on the first connection: the second has had time to be greeted, were it served.
      await new Promise((resolve) => second.once('connect', resolve));
      first.request(Command.read, 0, 512);
      await first.simpleReply(512);
      expect(received).toBe(0);
      expect(one.connections).toBe(1);
      first.request(Command.disc, 0, 0);
      await new Promise((resolve) => first.sock.once('close', resolve));
      await new Promise<void>((resolve) => second.on('data', () => received >= 18 && resolve()));
      expect(received).toBe(18);
      second.destroy();
    } finally {
      await one.close();
    }
  });

  it('replaces a stale socket file but refuses a live one', async () => {
    const path = join(dir, 'stale.sock');
    // A listener in another process, killed without a chance to clean up, as after a crash.
    const holder = spawn(process.execPath, ['-e',
      `require('net').createServer().listen(${JSON.stringify(path)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'ignore'] });
    await new Promise((resolve) => holder.stdout!.once('data', resolve));
    const live = await NbdServer.start({ device, listen: { kind: 'unix', path }, mode: 'read-only' })
      .then(() => 'started', (err: VirtkitError) => err.code);
    expect(live).toBe('connection.failed');
    holder.kill('SIGKILL');
    await new Promise((resolve) => holder.once('exit', resolve));
    expect(existsSync(path)).toBe(true);
    const again = await NbdServer.start({ device, listen: { kind: 'unix', path }, mode: 'read-only' });
    await again.close();
  });

  it('closes the connection on a bad request magic', async () => {
    const c = await TestClient.open(join(dir, 'ro.sock'));
    await c.go();
    c.sock.write(Buffer.alloc(28, 0x41));
    await new Promise((resolve) => c.sock.once('close', resolve));
  });
});
