/**
 * Wire constants of the NBD protocol (fixed newstyle handshake, structured replies, block
 * status), as numbered by the protocol document of the NetworkBlockDevice project. Every
 * integer on the wire is big-endian.
 */

/** Server greeting: `NBDMAGIC` then `IHAVEOPT`. Option requests start with `IHAVEOPT` too. */
export const NBD_MAGIC = 0x4e42444d41474943n;
export const IHAVEOPT = 0x49484156454f5054n;
/** Prefix of every option reply. */
export const OPTION_REPLY_MAGIC = 0x3e889045565a9n;

export const REQUEST_MAGIC = 0x25609513;
export const SIMPLE_REPLY_MAGIC = 0x67446698;
export const STRUCTURED_REPLY_MAGIC = 0x668e33ef;

/** Handshake flags (server) and client flags (the client's echo of what it understood). */
export const HandshakeFlag = { fixedNewstyle: 1 << 0, noZeroes: 1 << 1 } as const;
export const ClientFlag = { fixedNewstyle: 1 << 0, noZeroes: 1 << 1 } as const;
export const KNOWN_CLIENT_FLAGS = ClientFlag.fixedNewstyle | ClientFlag.noZeroes;

/** Transmission flags, sent with the export's size when entering transmission. */
export const TransmissionFlag = {
  hasFlags: 1 << 0,
  readOnly: 1 << 1,
  sendFlush: 1 << 2,
  sendFua: 1 << 3,
  rotational: 1 << 4,
  sendTrim: 1 << 5,
  sendWriteZeroes: 1 << 6,
  sendDf: 1 << 7,
  canMultiConn: 1 << 8,
} as const;

export const Option = {
  exportName: 1,
  abort: 2,
  list: 3,
  startTls: 5,
  info: 6,
  go: 7,
  structuredReply: 8,
  listMetaContext: 9,
  setMetaContext: 10,
} as const;

const ERR = 0x80000000;
export const OptionReply = {
  ack: 1,
  server: 2,
  info: 3,
  metaContext: 4,
  errUnsup: ERR + 1,
  errPolicy: ERR + 2,
  errInvalid: ERR + 3,
  errPlatform: ERR + 4,
  errTlsReqd: ERR + 5,
  errUnknown: ERR + 6,
  errShutdown: ERR + 7,
  errBlockSizeReqd: ERR + 8,
  errTooBig: ERR + 9,
} as const;

export const InfoType = { export: 0, name: 1, description: 2, blockSize: 3 } as const;

export const Command = {
  read: 0,
  write: 1,
  disc: 2,
  flush: 3,
  trim: 4,
  cache: 5,
  writeZeroes: 6,
  blockStatus: 7,
} as const;

export const CommandFlag = { fua: 1 << 0, noHole: 1 << 1, df: 1 << 2, reqOne: 1 << 3, fastZero: 1 << 4 } as const;
export const KNOWN_COMMAND_FLAGS = CommandFlag.fua | CommandFlag.noHole | CommandFlag.df | CommandFlag.reqOne
  | CommandFlag.fastZero;

export const ReplyFlag = { done: 1 << 0 } as const;

export const ChunkType = {
  none: 0,
  offsetData: 1,
  offsetHole: 2,
  blockStatus: 5,
  error: (1 << 15) + 1,
  errorOffset: (1 << 15) + 2,
} as const;

/** Error numbers on the wire (Linux values, whatever the host). */
export const NbdErrno = {
  perm: 1,
  io: 5,
  nomem: 12,
  inval: 22,
  nospc: 28,
  overflow: 75,
  notsup: 95,
  shutdown: 108,
} as const;
export type NbdErrnoValue = (typeof NbdErrno)[keyof typeof NbdErrno];

/** Flags of a `base:allocation` block status descriptor. */
export const AllocationState = { hole: 1 << 0, zero: 1 << 1 } as const;
export const BASE_ALLOCATION = 'base:allocation';

/** Sizes of fixed-length messages. */
export const REQUEST_HEADER_SIZE = 28;
export const OPTION_HEADER_SIZE = 16;
export const SIMPLE_REPLY_SIZE = 16;
export const STRUCTURED_HEADER_SIZE = 20;

/** Strings in the protocol (export names, queries) are at most this long. */
export const MAX_STRING_LENGTH = 4096;
