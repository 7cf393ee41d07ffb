import type { Duplex } from 'node:stream';
import { isVirtkitError, VirtkitError } from '../../util/errors.js';
import { readInto, type BlockExtent } from '../block/index.js';
import { BufferPool } from './buffer-pool.js';
import { EndOfStream, type ByteReader } from './byte-reader.js';
import { MAX_REQUEST_PAYLOAD, type NbdExport } from './export.js';
import type { Session } from './negotiate.js';
import {
  AllocationState, ChunkType, Command, CommandFlag, KNOWN_COMMAND_FLAGS, NbdErrno, type NbdErrnoValue, ReplyFlag,
  REQUEST_HEADER_SIZE, REQUEST_MAGIC, SIMPLE_REPLY_MAGIC, SIMPLE_REPLY_SIZE, STRUCTURED_HEADER_SIZE,
  STRUCTURED_REPLY_MAGIC,
} from './protocol.js';

/** How the transmission phase ended when the client played by the rules. */
export type TransmissionEnd = 'disconnect' | 'eof';

export interface TransmissionLimits {
  /** Requests being served at once; the next header is read only when one finishes. */
  readonly maxInFlightRequests: number;
  /** Payload bytes being served at once (reads and writes), bounding memory per connection. */
  readonly maxInFlightBytes: number;
  /** Stop starting requests while this much reply data waits in the socket's buffer. */
  readonly maxQueuedReplyBytes: number;
}

export const DEFAULT_LIMITS: TransmissionLimits = {
  maxInFlightRequests: 32,
  maxInFlightBytes: 128 * 1024 * 1024,
  maxQueuedReplyBytes: 64 * 1024 * 1024,
};

/** Zero extents shorter than this are sent as data: a hole chunk costs more than it saves. */
const MIN_HOLE_CHUNK = 4096;
/** Most descriptors one block status reply carries; the client asks again for the rest. */
const MAX_STATUS_DESCRIPTORS = 1 << 16;

interface Request {
  readonly flags: number;
  readonly type: number;
  /** The client's opaque cookie, echoed in every reply. */
  readonly cookie: Buffer;
  readonly offset: number;
  readonly length: number;
}

/** A request refused with an NBD error number (and a message for structured error chunks). */
class RequestError extends Error {
  constructor(readonly errno: NbdErrnoValue, message: string) {
    super(message);
  }
}

/**
 * The transmission phase: reads requests and serves them, several at once (clients pipeline),
 * replying in completion order. Each reply is written in one corked burst (header and data
 * buffers go out together through writev) so replies never interleave. Payloads are bounded
 * by MAX_REQUEST_PAYLOAD, and a refused write's payload is skipped without being buffered.
 * Throws `nbd.protocol` on a malformed request; resolves when the client disconnects.
 */
export async function serveTransmission(
  reader: ByteReader, out: Duplex, exp: NbdExport, session: Session, limits: TransmissionLimits = DEFAULT_LIMITS,
): Promise<TransmissionEnd> {
  const pool = new BufferPool();
  const replies = new ReplyWriter(out, session.structuredReplies, pool);
  const inFlight = new Set<Promise<void>>();
  let inFlightBytes = 0;

  const waitForRoom = async (): Promise<void> => {
    while (inFlight.size >= limits.maxInFlightRequests || inFlightBytes >= limits.maxInFlightBytes) {
      await Promise.race(inFlight);
    }
    if (out.writableLength > limits.maxQueuedReplyBytes && !out.destroyed) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          out.off('drain', done);
          out.off('close', done);
          resolve();
        };
        out.on('drain', done);
        out.on('close', done);
      });
    }
  };
  const drain = async (): Promise<void> => {
    while (inFlight.size) await Promise.race(inFlight);
  };

  for (;;) {
    await waitForRoom();
    if (out.destroyed) {
      await drain();
      return 'eof';
    }
    let head: Buffer;
    try {
      head = await reader.read(REQUEST_HEADER_SIZE);
    } catch (err) {
      await drain();
      if (err instanceof EndOfStream) return 'eof';
      throw err;
    }
    const req = parseRequestHeader(head);

    if (req.type === Command.disc) {
      await drain();
      out.end();
      return 'disconnect';
    }

    // A write's payload follows its header and must be consumed before the next request.
    let payload: Buffer | undefined;
    const refusal = checkRequest(req, exp, session);
    if (req.type === Command.write) {
      if (refusal === undefined) payload = await reader.read(req.length, true);
      else await reader.skip(req.length);
    }

    // Only requests that will hold a buffer count against the payload budget.
    const bytes = refusal === undefined && (req.type === Command.read || req.type === Command.write) ? req.length : 0;
    inFlightBytes += bytes;
    const task = (async () => {
      try {
        if (refusal) throw refusal;
        await serveRequest(req, payload, exp, session, replies, pool);
      } catch (err) {
        const failure = err instanceof RequestError ? err : ioError(err);
        replies.error(req, failure.errno, failure.message);
      }
    })().finally(() => {
      inFlightBytes -= bytes;
      inFlight.delete(task);
    });
    inFlight.add(task);
  }
}

export function parseRequestHeader(head: Buffer): Request {
  const magic = head.readUInt32BE(0);
  if (magic !== REQUEST_MAGIC) {
    throw new VirtkitError('nbd.protocol', `bad request magic 0x${magic.toString(16)}`, { magic });
  }
  const offset = head.readBigUInt64BE(16);
  return {
    flags: head.readUInt16BE(4),
    type: head.readUInt16BE(6),
    cookie: Buffer.from(head.subarray(8, 16)),
    // Offsets past 2^53 are out of range for any device; -1 makes the range check refuse them.
    offset: offset > BigInt(Number.MAX_SAFE_INTEGER) ? -1 : Number(offset),
    length: head.readUInt32BE(24),
  };
}

/** Refusals decided from the header alone, before any payload is read or memory allocated. */
function checkRequest(req: Request, exp: NbdExport, session: Session): RequestError | undefined {
  if ((req.flags & ~KNOWN_COMMAND_FLAGS) !== 0) {
    return new RequestError(NbdErrno.inval, `unknown command flags 0x${req.flags.toString(16)}`);
  }
  const size = exp.device.size;
  const outside = req.offset < 0 || req.offset > size || req.length > size - req.offset;
  switch (req.type) {
    case Command.read:
    case Command.blockStatus:
      if (outside) return new RequestError(NbdErrno.inval, `range ${req.offset}+${req.length} is outside the export`);
      if (req.type === Command.read && req.length > MAX_REQUEST_PAYLOAD) {
        return new RequestError(NbdErrno.overflow, `read of ${req.length} bytes exceeds ${MAX_REQUEST_PAYLOAD}`);
      }
      if (req.type === Command.blockStatus) {
        if (session.allocationContextId === undefined) {
          return new RequestError(NbdErrno.inval, 'no meta context was negotiated');
        }
        if (req.length === 0) return new RequestError(NbdErrno.inval, 'block status of zero bytes');
      }
      return undefined;
    case Command.write:
    case Command.writeZeroes:
    case Command.trim:
      if (req.type === Command.write && req.length > MAX_REQUEST_PAYLOAD) {
        return new RequestError(NbdErrno.overflow, `write of ${req.length} bytes exceeds ${MAX_REQUEST_PAYLOAD}`);
      }
      if (!exp.writer) return new RequestError(NbdErrno.perm, 'the export is read-only');
      if (outside) {
        return new RequestError(req.type === Command.trim ? NbdErrno.inval : NbdErrno.nospc,
          `range ${req.offset}+${req.length} is outside the export`);
      }
      return undefined;
    case Command.flush:
      return undefined;
    default:
      return new RequestError(NbdErrno.inval, `command ${req.type} is not supported`);
  }
}

async function serveRequest(
  req: Request, payload: Buffer | undefined, exp: NbdExport, session: Session, replies: ReplyWriter, pool: BufferPool,
): Promise<void> {
  const dev = exp.device;
  switch (req.type) {
    case Command.read:
      if (!session.structuredReplies) {
        replies.simple(req, 0, req.length ? await readPooled(exp, pool, req.offset, req.length) : undefined);
      } else if (req.length === 0 || (req.flags & CommandFlag.df) !== 0) {
        replies.readChunks(req, [{ kind: 'data', offset: req.offset, data: await readPooled(exp, pool, req.offset, req.length) }]);
      } else {
        replies.readChunks(req, await readSegments(exp, pool, req.offset, req.length));
      }
      return;
    case Command.blockStatus: {
      const extents = await dev.blockStatus(req.offset, req.length);
      const limit = (req.flags & CommandFlag.reqOne) !== 0 ? 1 : MAX_STATUS_DESCRIPTORS;
      replies.blockStatus(req, session.allocationContextId!, clampExtents(extents, req, limit));
      return;
    }
    case Command.write:
      await exp.writer!.write(req.offset, payload!);
      break;
    case Command.writeZeroes:
      await exp.writer!.writeZeroes(req.offset, req.length);
      break;
    case Command.trim:
      await exp.writer!.trim(req.offset, req.length);
      break;
    case Command.flush:
      await exp.writer?.flush();
      break;
  }
  replies.simple(req, 0);
}

/** Data segments hold pool buffers, returned to the pool once sent. */
export type ReadSegment = { kind: 'data'; offset: number; data: Buffer } | { kind: 'hole'; offset: number; length: number };

async function readPooled(exp: NbdExport, pool: BufferPool, offset: number, length: number): Promise<Buffer> {
  const buf = pool.acquire(length);
  try {
    await readInto(exp.device, offset, buf);
  } catch (err) {
    pool.release(buf);
    throw err;
  }
  return buf;
}

/** A structured read: data where the device has data, hole chunks for long zero runs. */
async function readSegments(exp: NbdExport, pool: BufferPool, offset: number, length: number): Promise<ReadSegment[]> {
  const extents = await exp.device.blockStatus(offset, length);
  const plan: { hole: boolean; offset: number; length: number }[] = [];
  for (const e of clampExtents(extents, { offset, length }, Infinity)) {
    const hole = e.zero && e.length >= MIN_HOLE_CHUNK;
    const last = plan[plan.length - 1];
    if (last && last.hole === hole) last.length += e.length;
    else plan.push({ hole, offset: e.offset, length: e.length });
  }
  const covered = plan.reduce((n, p) => n + p.length, 0);
  if (covered !== length) {
    // The device's map does not tile the request; do not trust it, read everything.
    return [{ kind: 'data', offset, data: await readPooled(exp, pool, offset, length) }];
  }
  const segments = await Promise.allSettled(plan.map(async (p): Promise<ReadSegment> => p.hole
    ? { kind: 'hole', offset: p.offset, length: p.length }
    : { kind: 'data', offset: p.offset, data: await readPooled(exp, pool, p.offset, p.length) }));
  const failed = segments.find((s) => s.status === 'rejected');
  if (failed) {
    for (const s of segments) if (s.status === 'fulfilled' && s.value.kind === 'data') pool.release(s.value.data);
    throw failed.reason;
  }
  return segments.map((s) => (s as PromiseFulfilledResult<ReadSegment>).value);
}

/** Extents cut to the request, in order, without empty ones, at most `limit` of them. */
function clampExtents(extents: readonly BlockExtent[], req: { offset: number; length: number }, limit: number): BlockExtent[] {
  const end = req.offset + req.length;
  const out: BlockExtent[] = [];
  let pos = req.offset;
  for (const e of extents) {
    if (out.length >= limit) break;
    const start = Math.max(e.offset, pos);
    const stop = Math.min(e.offset + e.length, end);
    if (start !== pos || stop <= start) {
      if (stop <= start) continue;
      break; // a gap in the map: report only the contiguous prefix
    }
    out.push({ offset: start, length: stop - start, zero: e.zero, allocated: e.allocated });
    pos = stop;
  }
  return out;
}

function ioError(err: unknown): RequestError {
  if (isVirtkitError(err) && err.code === 'image.io') return new RequestError(NbdErrno.io, err.message);
  if (isVirtkitError(err)) return new RequestError(NbdErrno.io, err.describe());
  return new RequestError(NbdErrno.io, err instanceof Error ? err.message : String(err));
}

/** Encodes replies; each method writes one whole reply in a single corked burst. */
class ReplyWriter {
  constructor(private readonly out: Duplex, private readonly structured: boolean, private readonly pool: BufferPool) {}

  /** A simple reply; `data` (a pool buffer) goes back to the pool once sent. */
  simple(req: Request, errno: number, data?: Buffer): void {
    const head = Buffer.allocUnsafe(SIMPLE_REPLY_SIZE);
    head.writeUInt32BE(SIMPLE_REPLY_MAGIC, 0);
    head.writeUInt32BE(errno, 4);
    req.cookie.copy(head, 8);
    this.send(data && data.length ? [head, data] : [head], data ? [data] : []);
  }

  readChunks(req: Request, segments: readonly ReadSegment[]): void {
    const only = segments.length === 1 ? segments[0] : undefined;
    if (segments.length === 0 || (only?.kind === 'data' && only.data.length === 0)) {
      this.send([this.chunkHeader(req, ReplyFlag.done, ChunkType.none, 0, 0)]);
      return;
    }
    const parts: Uint8Array[] = [];
    const pooled: Buffer[] = [];
    segments.forEach((s, i) => {
      const flags = i === segments.length - 1 ? ReplyFlag.done : 0;
      if (s.kind === 'data') {
        const head = this.chunkHeader(req, flags, ChunkType.offsetData, 8 + s.data.length, 8);
        head.writeBigUInt64BE(BigInt(s.offset), STRUCTURED_HEADER_SIZE);
        parts.push(head, s.data);
        pooled.push(s.data);
      } else {
        const head = this.chunkHeader(req, flags, ChunkType.offsetHole, 12, 12);
        head.writeBigUInt64BE(BigInt(s.offset), STRUCTURED_HEADER_SIZE);
        head.writeUInt32BE(s.length, STRUCTURED_HEADER_SIZE + 8);
        parts.push(head);
      }
    });
    this.send(parts, pooled);
  }

  blockStatus(req: Request, contextId: number, extents: readonly BlockExtent[]): void {
    const head = this.chunkHeader(req, ReplyFlag.done, ChunkType.blockStatus, 4 + 8 * extents.length, 4 + 8 * extents.length);
    let at = STRUCTURED_HEADER_SIZE;
    head.writeUInt32BE(contextId, at);
    at += 4;
    for (const e of extents) {
      head.writeUInt32BE(e.length, at);
      head.writeUInt32BE((e.allocated ? 0 : AllocationState.hole) | (e.zero ? AllocationState.zero : 0), at + 4);
      at += 8;
    }
    this.send([head]);
  }

  /** A failed request: a structured error chunk when negotiated (mandatory for reads), else a simple reply. */
  error(req: Request, errno: NbdErrnoValue, message: string): void {
    if (!this.structured) {
      this.simple(req, errno);
      return;
    }
    const text = Buffer.from(message.slice(0, 1024), 'utf8');
    const head = this.chunkHeader(req, ReplyFlag.done, ChunkType.error, 6 + text.length, 6);
    head.writeUInt32BE(errno, STRUCTURED_HEADER_SIZE);
    head.writeUInt16BE(text.length, STRUCTURED_HEADER_SIZE + 4);
    this.send([head, text]);
  }

  /** A chunk header with room for `extra` bytes of fixed payload after it. */
  private chunkHeader(req: Request, flags: number, type: number, payloadLength: number, extra: number): Buffer {
    const head = Buffer.allocUnsafe(STRUCTURED_HEADER_SIZE + extra);
    head.writeUInt32BE(STRUCTURED_REPLY_MAGIC, 0);
    head.writeUInt16BE(flags, 4);
    head.writeUInt16BE(type, 6);
    req.cookie.copy(head, 8);
    head.writeUInt32BE(payloadLength, 16);
    return head;
  }

  /** Writes one reply; `pooled` buffers return to the pool once the socket is done with them. */
  private send(parts: readonly Uint8Array[], pooled: readonly Buffer[] = []): void {
    if (this.out.destroyed || this.out.writableEnded) return;
    const release = pooled.length ? () => pooled.forEach((b) => this.pool.release(b)) : undefined;
    if (parts.length === 1) {
      this.out.write(parts[0], release);
      return;
    }
    this.out.cork();
    parts.forEach((p, i) => this.out.write(p, i === parts.length - 1 ? release : undefined));
    this.out.uncork();
  }
}
