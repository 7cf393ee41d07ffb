import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duplex } from 'node:stream';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { isVirtkitError } from '../../util/errors.js';
import { RawImage } from '../image/raw.js';
import { serveConnection } from './connection.js';
import type { NbdExport } from './export.js';
import { Command, IHAVEOPT, InfoType, Option, REQUEST_MAGIC } from './protocol.js';
import { SnapshotOverlay } from './snapshot-overlay.js';
import { mulberry32 as rng } from '../../../test/helpers/prng.js';

/** A server-side stream fed from a byte string; counts what the server writes back. */
function feed(input: Buffer): { stream: Duplex; written: () => number } {
  let written = 0;
  const stream = new Duplex({
    read() {},
    write(chunk: Buffer, _enc, cb) {
      written += chunk.length;
      cb();
    },
  });
  // Deliver in a few pieces, as a socket would.
  let at = 0;
  while (at < input.length) {
    const n = Math.min(input.length - at, 1 + (input[at]! * 13) % 700);
    stream.push(input.subarray(at, at + n));
    at += n;
  }
  stream.push(null);
  return { stream, written: () => written };
}

function option(code: number, data: Buffer): Buffer {
  const head = Buffer.alloc(16);
  head.writeBigUInt64BE(IHAVEOPT, 0);
  head.writeUInt32BE(code, 8);
  head.writeUInt32BE(data.length, 12);
  return Buffer.concat([head, data]);
}

function request(type: number, offset: number, length: number, payload?: Buffer, flags = 0): Buffer {
  const head = Buffer.alloc(28);
  head.writeUInt32BE(REQUEST_MAGIC, 0);
  head.writeUInt16BE(flags, 4);
  head.writeUInt16BE(type, 6);
  head.writeBigUInt64BE(7n, 8);
  head.writeBigUInt64BE(BigInt(offset), 16);
  head.writeUInt32BE(length, 24);
  return payload ? Buffer.concat([head, payload]) : head;
}

/** A well-formed session touching every option and command, the seed for mutations. */
function validSession(): Buffer {
  const meta = Buffer.alloc(4 + 4 + 4 + 15);
  meta.writeUInt32BE(0, 0);
  meta.writeUInt32BE(1, 4);
  meta.writeUInt32BE(15, 8);
  meta.write('base:allocation', 12);
  const info = Buffer.from([0, 0, 0, 0, 0, 1, 0, InfoType.blockSize]);
  return Buffer.concat([
    Buffer.from([0, 0, 0, 3]),
    option(Option.list, Buffer.alloc(0)),
    option(Option.structuredReply, Buffer.alloc(0)),
    option(Option.listMetaContext, meta),
    option(Option.setMetaContext, meta),
    option(Option.info, info),
    option(Option.go, info),
    request(Command.read, 0, 4096),
    request(Command.blockStatus, 0, 65536),
    request(Command.write, 100, 8, Buffer.from('abcdefgh')),
    request(Command.writeZeroes, 65536, 65536),
    request(Command.trim, 0, 512),
    request(Command.flush, 0, 0),
    request(Command.read, 60, 100, undefined, 4),
    request(Command.disc, 0, 0),
  ]);
}

const INTERESTING_U32 = [0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 4096, 32 * 1024 * 1024 + 1, 65536];

function mutate(base: Buffer, r: () => number): Buffer {
  const b = Buffer.from(base);
  const kind = Math.floor(r() * 5);
  const count = 1 + Math.floor(r() * 4);
  for (let i = 0; i < count; i++) {
    const at = Math.floor(r() * b.length);
    if (kind === 0) b[at] = Math.floor(r() * 256);
    else if (kind === 1) b[at]! ^= 1 << Math.floor(r() * 8);
    else if (kind === 2 && at + 4 <= b.length) b.writeUInt32BE(INTERESTING_U32[Math.floor(r() * INTERESTING_U32.length)]!, at);
  }
  if (kind === 3) return b.subarray(0, Math.floor(r() * b.length));
  if (kind === 4) {
    const at = Math.floor(r() * b.length);
    const junk = Buffer.alloc(Math.floor(r() * 64), Math.floor(r() * 256));
    return Buffer.concat([b.subarray(0, at), junk, b.subarray(at)]);
  }
  return b;
}

let dir: string;
let device: RawImage;
let overlay: SnapshotOverlay;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nbd-fuzz-'));
  await writeFile(join(dir, 'disk.raw'), Buffer.alloc(256 * 1024, 0x5a));
  device = await RawImage.open(join(dir, 'disk.raw'));
  overlay = await SnapshotOverlay.create(device, { dir });
});

afterAll(async () => {
  await overlay?.close();
  await device?.close();
  await rm(dir, { recursive: true, force: true });
});

/**
 * Every outcome of a hostile byte stream is a normal end or a typed `nbd.protocol` error,
 * in bounded time, and the server's output stays small (it answers what it read, nothing more).
 */
it('survives 10,000 random and mutated client byte streams with typed errors', async () => {
  const exports: NbdExport[] = [
    { name: '', device, multiConn: false },
    { name: '', device: overlay, writer: overlay, multiConn: true },
  ];
  const seedSession = validSession();
  const outcomes = new Map<string, number>();
  for (let i = 0; i < 10_000; i++) {
    const r = rng(i);
    let input: Buffer;
    if (i % 4 === 0) {
      input = Buffer.alloc(Math.floor(r() * 300));
      for (let j = 0; j < input.length; j++) input[j] = Math.floor(r() * 256);
      // Half the random streams get past the greeting, to reach the option parser.
      if (i % 8 === 0 && input.length > 12) Buffer.from([0, 0, 0, 3]).copy(input, 0);
      if (i % 8 === 0 && input.length > 12) input.writeBigUInt64BE(IHAVEOPT, 4);
    } else {
      input = mutate(seedSession, r);
    }
    const { stream, written } = feed(input);
    let outcome: string;
    try {
      outcome = await serveConnection(stream, exports[i % 2]!);
    } catch (err) {
      if (!isVirtkitError(err, 'nbd.protocol')) throw new Error(`iteration ${i}: untyped failure ${String(err)}`);
      outcome = 'nbd.protocol';
    }
    outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    // Bounded output: replies to at most a handful of 64 KiB reads plus option replies.
    expect(written()).toBeLessThan(2 * 1024 * 1024);
  }
  // The corpus reaches both clean ends and protocol errors.
  expect(outcomes.get('nbd.protocol')).toBeGreaterThan(100);
  expect((outcomes.get('disconnect') ?? 0) + (outcomes.get('eof') ?? 0)).toBeGreaterThan(100);
});
