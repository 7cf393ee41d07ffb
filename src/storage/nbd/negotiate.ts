import type { Duplex } from 'node:stream';
import { VirtkitError } from '../../util/errors.js';
import type { ByteReader } from './byte-reader.js';
import { MAX_REQUEST_PAYLOAD, MIN_BLOCK_SIZE, PREFERRED_BLOCK_SIZE, type NbdExport } from './export.js';
import {
  BASE_ALLOCATION, ClientFlag, HandshakeFlag, IHAVEOPT, InfoType, KNOWN_CLIENT_FLAGS, MAX_STRING_LENGTH,
  NBD_MAGIC, Option, OPTION_HEADER_SIZE, OPTION_REPLY_MAGIC, OptionReply, TransmissionFlag,
} from './protocol.js';

/** What option haggling settled, carried into the transmission phase. */
export interface Session {
  readonly structuredReplies: boolean;
  /** Context id of `base:allocation` when the client selected it, for NBD_CMD_BLOCK_STATUS. */
  readonly allocationContextId: number | undefined;
  readonly transmissionFlags: number;
}

/** How haggling ended: the client went to transmission, or left (NBD_OPT_ABORT). */
export type NegotiationResult = { kind: 'transmission'; session: Session } | { kind: 'aborted' };

/** Option payloads above this size are skipped unread and answered with NBD_REP_ERR_TOO_BIG. */
export const MAX_OPTION_LENGTH = 64 * 1024;
/** The id this server gives `base:allocation` (ids are the server's choice). */
const ALLOCATION_CONTEXT_ID = 1;

function protocolError(message: string, data: Record<string, unknown> = {}): VirtkitError {
  return new VirtkitError('nbd.protocol', message, data);
}

/**
 * The fixed newstyle handshake, server side: greeting, client flags, then options until the
 * client enters transmission (NBD_OPT_GO or NBD_OPT_EXPORT_NAME) or aborts. Everything read is
 * untrusted: lengths are checked before any allocation and every field is bounds-checked.
 * Throws `nbd.protocol` when the client breaks the protocol; the caller drops the connection.
 */
export async function negotiate(reader: ByteReader, out: Duplex, exp: NbdExport): Promise<NegotiationResult> {
  const greeting = Buffer.alloc(18);
  greeting.writeBigUInt64BE(NBD_MAGIC, 0);
  greeting.writeBigUInt64BE(IHAVEOPT, 8);
  greeting.writeUInt16BE(HandshakeFlag.fixedNewstyle | HandshakeFlag.noZeroes, 16);
  out.write(greeting);

  const clientFlags = (await reader.read(4, true)).readUInt32BE(0);
  if ((clientFlags & ~KNOWN_CLIENT_FLAGS) !== 0) {
    throw protocolError(`unknown client flags 0x${clientFlags.toString(16)}`, { clientFlags });
  }
  const fixed = (clientFlags & ClientFlag.fixedNewstyle) !== 0;
  const noZeroes = (clientFlags & ClientFlag.noZeroes) !== 0;
  let structuredReplies = false;
  let allocationContextId: number | undefined;

  const reply = (option: number, type: number, payload: Buffer = Buffer.alloc(0)): void => {
    const head = Buffer.alloc(20);
    head.writeBigUInt64BE(OPTION_REPLY_MAGIC, 0);
    head.writeUInt32BE(option, 8);
    head.writeUInt32BE(type, 12);
    head.writeUInt32BE(payload.length, 16);
    out.write(payload.length ? Buffer.concat([head, payload]) : head);
  };
  const replyError = (option: number, type: number, message: string): void => {
    // Without fixed newstyle a client cannot parse error replies: the only answer is to hang up.
    if (!fixed) throw protocolError(`option ${option} refused and client is not fixed newstyle: ${message}`);
    reply(option, type, Buffer.from(message, 'utf8'));
  };
  const flags = (): number => transmissionFlags(exp, structuredReplies);

  for (;;) {
    const head = await reader.read(OPTION_HEADER_SIZE);
    if (head.readBigUInt64BE(0) !== IHAVEOPT) throw protocolError('option request without IHAVEOPT magic');
    const option = head.readUInt32BE(8);
    const length = head.readUInt32BE(12);

    if (option === Option.exportName) {
      // Cannot be answered with an error: an unknown name means closing the connection.
      if (length > MAX_STRING_LENGTH) throw protocolError(`export name of ${length} bytes is too long`);
      const name = (await reader.read(length, true)).toString('utf8');
      if (name !== exp.name) throw protocolError(`client asked for unknown export '${name}'`, { name });
      const tail = Buffer.alloc(noZeroes ? 10 : 134);
      tail.writeBigUInt64BE(BigInt(exp.device.size), 0);
      tail.writeUInt16BE(flags(), 8);
      out.write(tail);
      return { kind: 'transmission', session: { structuredReplies, allocationContextId, transmissionFlags: flags() } };
    }
    if (length > MAX_OPTION_LENGTH) {
      await reader.skip(length);
      replyError(option, OptionReply.errTooBig, `option payload of ${length} bytes is too large`);
      continue;
    }
    const data = await reader.read(length, true);
    const p = new PayloadReader(data);

    switch (option) {
      case Option.abort:
        reply(option, OptionReply.ack);
        return { kind: 'aborted' };
      case Option.list: {
        if (length !== 0) {
          replyError(option, OptionReply.errInvalid, 'NBD_OPT_LIST takes no data');
          break;
        }
        const name = Buffer.from(exp.name, 'utf8');
        const payload = Buffer.alloc(4 + name.length);
        payload.writeUInt32BE(name.length, 0);
        name.copy(payload, 4);
        reply(option, OptionReply.server, payload);
        reply(option, OptionReply.ack);
        break;
      }
      case Option.structuredReply:
        if (length !== 0) replyError(option, OptionReply.errInvalid, 'NBD_OPT_STRUCTURED_REPLY takes no data');
        else {
          structuredReplies = true;
          reply(option, OptionReply.ack);
        }
        break;
      case Option.info:
      case Option.go: {
        const parsed = parseInfoRequest(p);
        if (typeof parsed === 'string') {
          replyError(option, OptionReply.errInvalid, parsed);
          break;
        }
        if (parsed.name !== exp.name) {
          replyError(option, OptionReply.errUnknown, `no export named '${parsed.name}'`);
          break;
        }
        reply(option, OptionReply.info, infoExport(exp.device.size, flags()));
        reply(option, OptionReply.info, infoBlockSize());
        if (parsed.requests.includes(InfoType.name)) reply(option, OptionReply.info, infoString(InfoType.name, exp.name));
        if (parsed.requests.includes(InfoType.description) && exp.description !== undefined) {
          reply(option, OptionReply.info, infoString(InfoType.description, exp.description));
        }
        reply(option, OptionReply.ack);
        if (option === Option.go) {
          return { kind: 'transmission', session: { structuredReplies, allocationContextId, transmissionFlags: flags() } };
        }
        break;
      }
      case Option.listMetaContext:
      case Option.setMetaContext: {
        const parsed = parseMetaContextRequest(p);
        if (typeof parsed === 'string') {
          replyError(option, OptionReply.errInvalid, parsed);
          break;
        }
        if (!structuredReplies) {
          replyError(option, OptionReply.errInvalid, 'meta contexts need structured replies first');
          break;
        }
        if (parsed.exportName !== exp.name) {
          replyError(option, OptionReply.errUnknown, `no export named '${parsed.exportName}'`);
          break;
        }
        const listing = option === Option.listMetaContext;
        const wanted = parsed.queries.some((q) => q === BASE_ALLOCATION || (listing && q === 'base:'))
          || (listing && parsed.queries.length === 0);
        if (!listing) allocationContextId = wanted ? ALLOCATION_CONTEXT_ID : undefined;
        if (wanted) reply(option, OptionReply.metaContext, metaContext(ALLOCATION_CONTEXT_ID, BASE_ALLOCATION));
        reply(option, OptionReply.ack);
        break;
      }
      default:
        replyError(option, OptionReply.errUnsup, `option ${option} is not supported`);
    }
  }
}

/** The transmission flags this export advertises. */
export function transmissionFlags(exp: NbdExport, structuredReplies: boolean): number {
  let f = TransmissionFlag.hasFlags;
  if (exp.writer) {
    f |= TransmissionFlag.sendFlush | TransmissionFlag.sendFua | TransmissionFlag.sendTrim
      | TransmissionFlag.sendWriteZeroes;
  } else {
    f |= TransmissionFlag.readOnly;
  }
  if (structuredReplies) f |= TransmissionFlag.sendDf;
  if (exp.multiConn) f |= TransmissionFlag.canMultiConn;
  return f;
}

/** Bounds-checked cursor over one option's payload. Every getter returns undefined past the end. */
class PayloadReader {
  private pos = 0;
  constructor(private readonly buf: Buffer) {}
  get atEnd(): boolean {
    return this.pos === this.buf.length;
  }
  u16(): number | undefined {
    if (this.pos + 2 > this.buf.length) return undefined;
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  u32(): number | undefined {
    if (this.pos + 4 > this.buf.length) return undefined;
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  /** A string preceded by its 32-bit length. */
  string(): string | undefined {
    const len = this.u32();
    if (len === undefined || len > MAX_STRING_LENGTH || this.pos + len > this.buf.length) return undefined;
    const s = this.buf.toString('utf8', this.pos, this.pos + len);
    this.pos += len;
    return s;
  }
}

function parseInfoRequest(p: PayloadReader): { name: string; requests: number[] } | string {
  const name = p.string();
  if (name === undefined) return 'bad export name';
  const count = p.u16();
  if (count === undefined) return 'missing information request count';
  const requests: number[] = [];
  for (let i = 0; i < count; i++) {
    const r = p.u16();
    if (r === undefined) return 'information request list is shorter than its count';
    requests.push(r);
  }
  if (!p.atEnd) return 'trailing bytes after information requests';
  return { name, requests };
}

function parseMetaContextRequest(p: PayloadReader): { exportName: string; queries: string[] } | string {
  const exportName = p.string();
  if (exportName === undefined) return 'bad export name';
  const count = p.u32();
  if (count === undefined) return 'missing query count';
  const queries: string[] = [];
  for (let i = 0; i < count; i++) {
    const q = p.string();
    if (q === undefined) return 'query list is shorter than its count';
    queries.push(q);
  }
  if (!p.atEnd) return 'trailing bytes after queries';
  return { exportName, queries };
}

function infoExport(size: number, flags: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt16BE(InfoType.export, 0);
  b.writeBigUInt64BE(BigInt(size), 2);
  b.writeUInt16BE(flags, 10);
  return b;
}

function infoBlockSize(): Buffer {
  const b = Buffer.alloc(14);
  b.writeUInt16BE(InfoType.blockSize, 0);
  b.writeUInt32BE(MIN_BLOCK_SIZE, 2);
  b.writeUInt32BE(PREFERRED_BLOCK_SIZE, 6);
  b.writeUInt32BE(MAX_REQUEST_PAYLOAD, 10);
  return b;
}

function infoString(type: number, s: string): Buffer {
  const text = Buffer.from(s, 'utf8');
  const b = Buffer.alloc(2 + text.length);
  b.writeUInt16BE(type, 0);
  text.copy(b, 2);
  return b;
}

function metaContext(id: number, name: string): Buffer {
  const text = Buffer.from(name, 'utf8');
  const b = Buffer.alloc(4 + text.length);
  b.writeUInt32BE(id, 0);
  text.copy(b, 4);
  return b;
}
