/**
 * The VMDK text descriptor (VMware's "Virtual Disk Format 1.1"): `key=value` lines and extent
 * lines such as `RW 6144 FLAT "disk-flat.vmdk" 0`. Pure and bounded: it takes text, returns
 * the fields we use, and refuses what we do not read.
 */
import { VirtkitError } from '../../util/errors.js';

/** Descriptors are a few hundred bytes; this bounds what we parse. */
export const MAX_DESCRIPTOR_BYTES = 64 * 1024;
/** twoGbMaxExtent* splits a 2 TiB disk into 1024 files: this allows four times that. */
export const MAX_EXTENTS = 4096;

export const VmdkExtentTypes = ['SPARSE', 'FLAT', 'ZERO'] as const;
export type VmdkExtentType = (typeof VmdkExtentTypes)[number];

export interface VmdkExtentLine {
  readonly sectors: number;
  readonly type: VmdkExtentType;
  /** The extent's file as written (relative to the descriptor); absent for ZERO. */
  readonly file: string | null;
  /** FLAT only: where the extent starts in its file, in sectors. */
  readonly offsetSectors: number;
}

export interface VmdkDescriptor {
  readonly createType: string;
  readonly cid: number;
  /** 0xffffffff when the disk has no parent. */
  readonly parentCid: number;
  readonly extents: readonly VmdkExtentLine[];
}

export const NO_PARENT = 0xffffffff;

function fail(code: 'image.corrupt' | 'image.unsupported', line: number, message: string): never {
  throw new VirtkitError(code, `vmdk descriptor line ${line}: ${message}`, { field: 'descriptor', line });
}

export function parseVmdkDescriptor(text: string): VmdkDescriptor {
  if (text.length > MAX_DESCRIPTOR_BYTES) fail('image.unsupported', 0, `descriptor larger than ${MAX_DESCRIPTOR_BYTES} bytes`);
  const fields = new Map<string, string>();
  const extents: VmdkExtentLine[] = [];
  const lines = text.replace(/\0[\s\S]*$/, '').split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    const extent = /^(RW|RDONLY|NOACCESS)\s+(\d+)\s+([A-Z]+)(?:\s+"([^"]*)"(?:\s+(\d+))?)?\s*$/.exec(line);
    if (extent !== null) {
      const [, access, sectorsText, type, file, offsetText] = extent;
      if (access === 'NOACCESS') fail('image.unsupported', i + 1, 'NOACCESS extents are not supported');
      if (!(VmdkExtentTypes as readonly string[]).includes(type!)) {
        fail('image.unsupported', i + 1, `extent type ${type} is not supported (${VmdkExtentTypes.join(', ')} are)`);
      }
      const sectors = Number(sectorsText);
      const offsetSectors = offsetText === undefined ? 0 : Number(offsetText);
      if (!Number.isSafeInteger(sectors * 512) || !Number.isSafeInteger(offsetSectors * 512)) fail('image.corrupt', i + 1, 'extent size out of range');
      if (type !== 'ZERO' && (file === undefined || file === '')) fail('image.corrupt', i + 1, `${type} extent without a file name`);
      if (extents.length >= MAX_EXTENTS) fail('image.unsupported', i + 1, `more than ${MAX_EXTENTS} extents`);
      extents.push({ sectors, type: type as VmdkExtentType, file: type === 'ZERO' ? null : file!, offsetSectors });
      continue;
    }
    const kv = /^([A-Za-z][\w.]*)\s*=\s*"?([^"]*)"?\s*$/.exec(line);
    if (kv !== null) fields.set(kv[1]!, kv[2]!);
    // Anything else (unknown syntax from newer tools) is ignored, as VMware does with unknown keys.
  }
  if (extents.length === 0) fail('image.corrupt', 0, 'no extents');
  const hex = (key: string, fallback: number): number => {
    const v = fields.get(key);
    if (v === undefined) return fallback;
    const n = Number.parseInt(v, 16);
    return Number.isNaN(n) ? fallback : n >>> 0;
  };
  return { createType: fields.get('createType') ?? '', cid: hex('CID', 0), parentCid: hex('parentCID', NO_PARENT), extents };
}
