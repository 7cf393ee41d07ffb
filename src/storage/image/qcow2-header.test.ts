import { describe, expect, it } from 'vitest';
import { isVirtkitError } from '../../util/errors.js';
import { parseQcow2Header, QCOW2_MAGIC } from './qcow2-header.js';

interface Fields {
  version?: number; clusterBits?: number; size?: number; cryptMethod?: number; l1Size?: number; l1Offset?: number;
  incompatible?: number; incompatibleHigh?: number; refcountOrder?: number; headerLength?: number; compressionType?: number;
  backingOffset?: number; backingSize?: number; sizeHigh?: number;
}

/** A minimal, valid v3 header in a 64 KiB first cluster, with fields overridable. */
function header(f: Fields = {}, extensions: Buffer[] = []): Buffer {
  const clusterBits = f.clusterBits ?? 16;
  const buf = Buffer.alloc(65536);
  buf.writeUInt32BE(QCOW2_MAGIC, 0);
  buf.writeUInt32BE(f.version ?? 3, 4);
  buf.writeBigUInt64BE(BigInt(f.backingOffset ?? 0), 8);
  buf.writeUInt32BE(f.backingSize ?? 0, 16);
  buf.writeUInt32BE(clusterBits, 20);
  buf.writeUInt32BE(f.sizeHigh ?? 0, 24);
  buf.writeUInt32BE(f.size ?? 1024 * 1024, 28);
  buf.writeUInt32BE(f.cryptMethod ?? 0, 32);
  buf.writeUInt32BE(f.l1Size ?? 1, 36);
  buf.writeBigUInt64BE(BigInt(f.l1Offset ?? 65536 * 3), 40);
  buf.writeBigUInt64BE(65536n, 48);
  buf.writeUInt32BE(1, 56);
  buf.writeUInt32BE(f.incompatibleHigh ?? 0, 72);
  buf.writeUInt32BE(f.incompatible ?? 0, 76);
  buf.writeUInt32BE(f.refcountOrder ?? 4, 96);
  buf.writeUInt32BE(f.headerLength ?? 112, 100);
  buf.writeUInt8(f.compressionType ?? 0, 104);
  let pos = f.headerLength ?? 112;
  for (const e of extensions) { e.copy(buf, pos); pos += e.length; }
  return buf;
}

function ext(type: number, data: Buffer, declaredLength = data.length): Buffer {
  const padded = Buffer.alloc(8 + Math.ceil(data.length / 8) * 8);
  padded.writeUInt32BE(type, 0);
  padded.writeUInt32BE(declaredLength, 4);
  data.copy(padded, 8);
  return padded;
}

const FILE_SIZE = 65536 * 4;

function failure(bytes: Uint8Array, fileSize = FILE_SIZE): { code: string; field: unknown; offset: unknown } {
  try {
    parseQcow2Header(bytes, fileSize);
  } catch (err) {
    if (!isVirtkitError(err)) throw err;
    return { code: err.code, field: err.data['field'], offset: err.data['offset'] };
  }
  throw new Error('expected the header to be refused');
}

describe('parseQcow2Header', () => {
  it('reads a valid v3 header with a backing file and its format', () => {
    const name = Buffer.from('base.qcow2');
    const h = parseQcow2Header(header({ backingOffset: 1024, backingSize: name.length }, [ext(0xe2792aca, Buffer.from('qcow2'))])
      .fill(0, 1024, 1024 + 64).fill(name, 1024, 1024 + name.length), FILE_SIZE);
    expect(h).toMatchObject({ version: 3, clusterSize: 65536, size: 1048576, backingFile: 'base.qcow2', backingFormat: 'qcow2', refcountBits: 16 });
  });

  it.each([
    ['truncated header', header().subarray(0, 40), 'image.corrupt', 'header'],
    ['truncated v3 header', header().subarray(0, 80), 'image.corrupt', 'header'],
    ['bad magic', Buffer.concat([Buffer.from('QFI\xfa', 'latin1'), header().subarray(4)]), 'image.corrupt', 'magic'],
    ['version 4', header({ version: 4 }), 'image.unsupported', 'version'],
    ['cluster_bits 8', header({ clusterBits: 8 }), 'image.corrupt', 'cluster_bits'],
    ['cluster_bits 22', header({ clusterBits: 22 }), 'image.corrupt', 'cluster_bits'],
    ['AES encryption', header({ cryptMethod: 1 }), 'image.unsupported', 'crypt_method'],
    ['LUKS encryption', header({ cryptMethod: 2 }), 'image.unsupported', 'crypt_method'],
    ['absurd l1_size', header({ l1Size: 0xffffffff }), 'image.corrupt', 'l1_size'],
    ['l1_size too small for the size', header({ size: 0x80000000, l1Size: 1 }), 'image.corrupt', 'l1_size'],
    ['L1 table past the end of the file', header({ l1Offset: 65536 * 100 }), 'image.corrupt', 'l1_table_offset'],
    ['misaligned L1 table', header({ l1Offset: 65536 + 8 }), 'image.corrupt', 'l1_table_offset'],
    ['unknown incompatible feature', header({ incompatible: 1 << 7 }), 'image.unsupported', 'incompatible_features'],
    ['high incompatible feature', header({ incompatibleHigh: 1 }), 'image.unsupported', 'incompatible_features'],
    ['external data file', header({ incompatible: 1 << 2 }), 'image.unsupported', 'incompatible_features'],
    ['extended L2 with 4 KiB clusters', header({ clusterBits: 12, incompatible: 1 << 4, l1Offset: 4096 * 3 }), 'image.corrupt', 'cluster_bits'],
    ['refcount_order 7', header({ refcountOrder: 7 }), 'image.corrupt', 'refcount_order'],
    ['header_length not a multiple of 8', header({ headerLength: 105 }), 'image.corrupt', 'header_length'],
    ['header_length past the cluster', header({ headerLength: 70000 }), 'image.corrupt', 'header_length'],
    ['compression type without its bit', header({ compressionType: 1 }), 'image.corrupt', 'compression_type'],
    ['unknown compression type', header({ incompatible: 1 << 3, compressionType: 9 }), 'image.corrupt', 'compression_type'],
    ['backing name too long', header({ backingOffset: 1024, backingSize: 5000 }), 'image.corrupt', 'backing_file_size'],
    ['backing name outside the first cluster', header({ backingOffset: 65530, backingSize: 100 }), 'image.corrupt', 'backing_file_offset'],
    ['size beyond 2^53', header({ sizeHigh: 0xffffffff }), 'image.corrupt', 'size'],
    ['extension overrunning the header area', header({}, [ext(0x12345678, Buffer.alloc(8), 0xfffffff0)]), 'image.corrupt', 'header_extension'],
    ['external data file extension', header({}, [ext(0x44415441, Buffer.from('data.raw'))]), 'image.unsupported', 'data_file'],
    ['duplicate backing format', header({}, [ext(0xe2792aca, Buffer.from('raw')), ext(0xe2792aca, Buffer.from('raw'))]), 'image.corrupt', 'header_extension'],
  ] as const)('%s', (_name, bytes, code, field) => {
    const f = failure(bytes);
    expect(f.code).toBe(code);
    expect(f.field).toBe(field);
    expect(typeof f.offset).toBe('number');
  });

  it('accepts zstd as a compression type (refused only when a compressed cluster is read)', () => {
    expect(parseQcow2Header(header({ incompatible: 1 << 3, compressionType: 1 }), FILE_SIZE).compressionType).toBe('zstd');
  });

  it('ignores unknown header extensions and reads the feature name table', () => {
    const names = Buffer.alloc(48);
    names.writeUInt8(1, 0);
    names.write('lazy refcounts', 2);
    const h = parseQcow2Header(header({}, [ext(0x01020304, Buffer.alloc(13)), ext(0x6803f857, names)]), FILE_SIZE);
    expect(h.featureNames).toEqual([{ type: 'compatible', bit: 0, name: 'lazy refcounts' }]);
  });
});
