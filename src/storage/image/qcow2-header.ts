/**
 * The qcow2 header and its extensions (docs/interop/qcow2.txt in QEMU), parsed from the
 * image's first cluster. Pure: takes bytes and the file size, returns a validated header
 * or throws `image.corrupt` / `image.unsupported` naming the field and its offset.
 */
import { VirtkitError, type ErrorCode } from '../../util/errors.js';

export const QCOW2_MAGIC = 0x514649fb; // "QFI\xfb"
export const QCOW2_V2_HEADER_LENGTH = 72;
export const QCOW2_V3_MIN_HEADER_LENGTH = 104;
export const MIN_CLUSTER_BITS = 9;
/** QEMU's implementation limit (2 MiB clusters); larger images cannot be made or read by QEMU either. */
export const MAX_CLUSTER_BITS = 21;
/** QEMU's implementation limit on the active L1 table (32 MiB): bounds the memory an image can make us use. */
export const MAX_L1_BYTES = 32 * 1024 * 1024;
export const MAX_BACKING_FILE_NAME = 1023;

const IncompatibleBits = {
  dirty: 1 << 0,
  corrupt: 1 << 1,
  externalDataFile: 1 << 2,
  compressionType: 1 << 3,
  extendedL2: 1 << 4,
} as const;
const KNOWN_INCOMPATIBLE = 0x1f;
const COMPATIBLE_LAZY_REFCOUNTS = 1;

const ExtensionTypes = {
  end: 0x00000000,
  backingFormat: 0xe2792aca,
  featureNames: 0x6803f857,
  bitmaps: 0x23852875,
  encryption: 0x0537be77,
  dataFile: 0x44415441,
} as const;

export const CompressionTypes = ['zlib', 'zstd'] as const;
export type CompressionType = (typeof CompressionTypes)[number];

export interface FeatureName {
  readonly type: 'incompatible' | 'compatible' | 'autoclear' | number;
  readonly bit: number;
  readonly name: string;
}

export interface Qcow2Header {
  readonly version: 2 | 3;
  readonly clusterBits: number;
  readonly clusterSize: number;
  /** Virtual disk size in bytes. */
  readonly size: number;
  readonly l1Size: number;
  readonly l1TableOffset: number;
  readonly refcountTableOffset: number;
  readonly refcountTableClusters: number;
  readonly nbSnapshots: number;
  readonly snapshotsOffset: number;
  readonly refcountBits: number;
  readonly headerLength: number;
  readonly dirty: boolean;
  readonly corrupt: boolean;
  readonly extendedL2: boolean;
  readonly lazyRefcounts: boolean;
  readonly compressionType: CompressionType;
  readonly backingFile: string | null;
  /** From the backing-format header extension; null when the image does not say. */
  readonly backingFormat: string | null;
  readonly featureNames: readonly FeatureName[];
  readonly hasBitmaps: boolean;
}

/** How many bytes of the file `parseQcow2Header` wants: the first cluster, up to the file's end. */
export function headerBytesWanted(prefix: Uint8Array, fileSize: number): number {
  if (prefix.length < 24) return Math.min(fileSize, QCOW2_V3_MIN_HEADER_LENGTH);
  const bits = new DataView(prefix.buffer, prefix.byteOffset, prefix.byteLength).getUint32(20);
  const clusterBits = bits >= MIN_CLUSTER_BITS && bits <= MAX_CLUSTER_BITS ? bits : MIN_CLUSTER_BITS;
  return Math.min(fileSize, 2 ** clusterBits);
}

function fail(code: ErrorCode, field: string, offset: number, message: string, extra: Record<string, unknown> = {}): never {
  throw new VirtkitError(code, `qcow2 ${field} (offset ${offset}): ${message}`, { field, offset, ...extra });
}

class Reader {
  private readonly view: DataView;
  constructor(readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  u8(off: number): number { return this.view.getUint8(off); }
  u16(off: number): number { return this.view.getUint16(off); }
  u32(off: number): number { return this.view.getUint32(off); }
  /** A 64-bit field as a safe integer; larger values are corruption for every field we read this way. */
  u64(off: number, field: string): number {
    const hi = this.view.getUint32(off);
    const lo = this.view.getUint32(off + 4);
    if (hi > 0x1fffff) fail('image.corrupt', field, off, `value 0x${hi.toString(16)}${lo.toString(16).padStart(8, '0')} is out of range`);
    return hi * 0x1_0000_0000 + lo;
  }
  /** The low 32 bits of a 64-bit bitmask and whether any higher bit is set. */
  mask64(off: number): { low: number; high: number } {
    return { high: this.view.getUint32(off), low: this.view.getUint32(off + 4) };
  }
  text(off: number, len: number): string {
    return Buffer.from(this.bytes.buffer, this.bytes.byteOffset + off, len).toString('utf8');
  }
}

/**
 * Parse the header from `bytes` (the image's first cluster, or all of a smaller file).
 * `fileSize` bounds the tables the header points at.
 */
export function parseQcow2Header(bytes: Uint8Array, fileSize: number): Qcow2Header {
  if (bytes.length < QCOW2_V2_HEADER_LENGTH) {
    fail('image.corrupt', 'header', 0, `truncated: ${bytes.length} bytes, a header needs at least ${QCOW2_V2_HEADER_LENGTH}`);
  }
  const r = new Reader(bytes);
  if (r.u32(0) !== QCOW2_MAGIC) fail('image.corrupt', 'magic', 0, 'not a qcow2 image (bad magic)');
  const version = r.u32(4);
  if (version !== 2 && version !== 3) fail('image.unsupported', 'version', 4, `version ${version} is not supported (2 and 3 are)`);

  const clusterBits = r.u32(20);
  if (clusterBits < MIN_CLUSTER_BITS || clusterBits > MAX_CLUSTER_BITS) {
    fail('image.corrupt', 'cluster_bits', 20, `${clusterBits} is outside ${MIN_CLUSTER_BITS}..${MAX_CLUSTER_BITS}`);
  }
  const clusterSize = 2 ** clusterBits;
  const size = r.u64(24, 'size');
  const cryptMethod = r.u32(32);
  if (cryptMethod !== 0) {
    fail('image.unsupported', 'crypt_method', 32, `encrypted images are not supported (${cryptMethod === 1 ? 'AES' : cryptMethod === 2 ? 'LUKS' : `method ${cryptMethod}`})`);
  }
  const l1Size = r.u32(36);
  const l1TableOffset = r.u64(40, 'l1_table_offset');
  const refcountTableOffset = r.u64(48, 'refcount_table_offset');
  const refcountTableClusters = r.u32(56);
  const nbSnapshots = r.u32(60);
  const snapshotsOffset = r.u64(64, 'snapshots_offset');

  let headerLength = QCOW2_V2_HEADER_LENGTH;
  let incompatible = 0;
  let compatible = 0;
  let autoclear = 0;
  let refcountOrder = 4;
  let compressionType: CompressionType = 'zlib';
  if (version === 3) {
    if (bytes.length < QCOW2_V3_MIN_HEADER_LENGTH) {
      fail('image.corrupt', 'header', 0, `truncated: ${bytes.length} bytes, a version 3 header needs ${QCOW2_V3_MIN_HEADER_LENGTH}`);
    }
    const inc = r.mask64(72);
    if (inc.high !== 0 || (inc.low & ~KNOWN_INCOMPATIBLE) !== 0) {
      fail('image.unsupported', 'incompatible_features', 72,
        `unknown incompatible feature bits 0x${inc.high.toString(16)}${(inc.low >>> 0).toString(16).padStart(8, '0')}`);
    }
    incompatible = inc.low;
    compatible = r.mask64(80).low;
    autoclear = r.mask64(88).low;
    refcountOrder = r.u32(96);
    if (refcountOrder > 6) fail('image.corrupt', 'refcount_order', 96, `${refcountOrder} is larger than 6`);
    headerLength = r.u32(100);
    if (headerLength < QCOW2_V3_MIN_HEADER_LENGTH || headerLength % 8 !== 0 || headerLength > bytes.length) {
      fail('image.corrupt', 'header_length', 100, `${headerLength} is not a multiple of 8 between ${QCOW2_V3_MIN_HEADER_LENGTH} and ${Math.min(bytes.length, clusterSize)}`);
    }
    if (incompatible & IncompatibleBits.externalDataFile) {
      fail('image.unsupported', 'incompatible_features', 72, 'images with an external data file are not supported');
    }
    const typeByte = headerLength > 104 ? r.u8(104) : 0;
    if (incompatible & IncompatibleBits.compressionType) {
      if (typeByte === 1) compressionType = 'zstd';
      else fail('image.corrupt', 'compression_type', 104, `compression type ${typeByte} with the compression-type feature bit set`);
    } else if (typeByte !== 0) {
      fail('image.corrupt', 'compression_type', 104, `compression type ${typeByte} without the compression-type feature bit`);
    }
    if ((incompatible & IncompatibleBits.extendedL2) && clusterBits < 14) {
      fail('image.corrupt', 'cluster_bits', 20, `extended L2 entries need clusters of at least 16 KiB, got ${clusterSize}`);
    }
  }
  const extendedL2 = (incompatible & IncompatibleBits.extendedL2) !== 0;

  // The L1 table must cover the virtual size and lie inside the file; its size is bounded like QEMU's.
  const l2Entries = clusterSize / (extendedL2 ? 16 : 8);
  const l1Needed = Math.ceil(size / (clusterSize * l2Entries));
  if (l1Size * 8 > MAX_L1_BYTES) fail('image.corrupt', 'l1_size', 36, `${l1Size} entries exceed the ${MAX_L1_BYTES}-byte limit`);
  if (l1Size < l1Needed) fail('image.corrupt', 'l1_size', 36, `${l1Size} entries cannot map a virtual size of ${size} (needs ${l1Needed})`);
  if (l1Size > 0) {
    if (l1TableOffset % clusterSize !== 0 || l1TableOffset === 0) {
      fail('image.corrupt', 'l1_table_offset', 40, `${l1TableOffset} is not a non-zero multiple of the cluster size`);
    }
    if (l1TableOffset + l1Size * 8 > fileSize) {
      fail('image.corrupt', 'l1_table_offset', 40, `the L1 table (${l1Size} entries at ${l1TableOffset}) lies past the end of the file (${fileSize} bytes)`);
    }
  }

  // Backing file name: inside the first cluster, at most 1023 bytes.
  const backingOffset = r.u64(8, 'backing_file_offset');
  const backingSize = r.u32(16);
  let backingFile: string | null = null;
  if (backingOffset !== 0) {
    if (backingSize === 0 || backingSize > MAX_BACKING_FILE_NAME) {
      fail('image.corrupt', 'backing_file_size', 16, `${backingSize} is not between 1 and ${MAX_BACKING_FILE_NAME}`);
    }
    if (backingOffset + backingSize > Math.min(clusterSize, bytes.length)) {
      fail('image.corrupt', 'backing_file_offset', 8, `the backing file name (${backingSize} bytes at ${backingOffset}) lies outside the first cluster`);
    }
    backingFile = r.text(backingOffset, backingSize);
    if (backingFile.includes('\0')) fail('image.corrupt', 'backing_file_offset', backingOffset, 'the backing file name contains a NUL byte');
  }

  // Header extensions: from the end of the header up to the backing file name (or the end of the first cluster).
  const extEnd = Math.min(bytes.length, clusterSize, backingOffset !== 0 ? backingOffset : Infinity);
  let backingFormat: string | null = null;
  const featureNames: FeatureName[] = [];
  let hasBitmaps = false;
  let pos = headerLength;
  const seen = new Set<number>();
  while (pos + 8 <= extEnd) {
    const type = r.u32(pos);
    const len = r.u32(pos + 4);
    if (type === ExtensionTypes.end) break;
    const dataStart = pos + 8;
    if (len > extEnd - dataStart) {
      fail('image.corrupt', 'header_extension', pos, `extension 0x${type.toString(16)} of ${len} bytes overruns the header area (ends at ${extEnd})`);
    }
    if (seen.has(type) && type !== ExtensionTypes.featureNames) {
      fail('image.corrupt', 'header_extension', pos, `extension 0x${type.toString(16)} appears twice`);
    }
    seen.add(type);
    switch (type) {
      case ExtensionTypes.backingFormat:
        if (len === 0 || len > 255) fail('image.corrupt', 'backing_format', pos, `length ${len} is not between 1 and 255`);
        backingFormat = r.text(dataStart, len);
        break;
      case ExtensionTypes.featureNames:
        for (let e = dataStart; e + 48 <= dataStart + len; e += 48) {
          const t = r.u8(e);
          const name = r.text(e + 2, 46).replace(/\0.*$/s, '');
          featureNames.push({ type: t === 0 ? 'incompatible' : t === 1 ? 'compatible' : t === 2 ? 'autoclear' : t, bit: r.u8(e + 1), name });
        }
        break;
      case ExtensionTypes.bitmaps:
        hasBitmaps = true;
        break;
      case ExtensionTypes.dataFile:
        fail('image.unsupported', 'data_file', pos, 'images with an external data file are not supported');
        break;
      default:
        break; // unknown extensions may be ignored (spec), encryption was refused above
    }
    pos = dataStart + Math.ceil(len / 8) * 8;
  }

  return {
    version,
    clusterBits,
    clusterSize,
    size,
    l1Size,
    l1TableOffset,
    refcountTableOffset,
    refcountTableClusters,
    nbSnapshots,
    snapshotsOffset,
    refcountBits: 2 ** refcountOrder,
    headerLength,
    dirty: (incompatible & IncompatibleBits.dirty) !== 0,
    corrupt: (incompatible & IncompatibleBits.corrupt) !== 0,
    extendedL2,
    lazyRefcounts: (compatible & COMPATIBLE_LAZY_REFCOUNTS) !== 0,
    compressionType,
    backingFile,
    backingFormat,
    featureNames,
    hasBitmaps: hasBitmaps && (autoclear & 1) !== 0,
  };
}
