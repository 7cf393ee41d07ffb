/** What every image driver exposes beyond the plain BlockDevice: its chain, allocation map and header facts. */
import type { BlockDevice } from '../block/index.js';

export const ImageFormats = ['raw', 'qcow2', 'vmdk', 'vdi'] as const;
export type ImageFormat = (typeof ImageFormats)[number];

/** One run of the allocation map with the detail `img map` shows (QEMU's `qemu-img map` terms). */
export interface MapExtent {
  readonly offset: number;
  readonly length: number;
  /** Which layer of the backing chain answered: 0 is the image itself. */
  readonly depth: number;
  /** Defined somewhere in the chain (data or a zero cluster) rather than left unallocated. */
  readonly present: boolean;
  /** Reads as zeros. */
  readonly zero: boolean;
  /** Backed by data stored in a file. */
  readonly data: boolean;
  /** Where the data lives in that layer's file, for uncompressed data. */
  readonly hostOffset?: number;
  readonly compressed?: boolean;
  /** The file that holds this run (the layer at `depth`). */
  readonly file: string;
}

/** `img info`'s facts about one layer; keys follow `qemu-img info --output=json` so scripts can move over. */
export interface ImageInfo {
  readonly filename: string;
  readonly format: ImageFormat;
  readonly 'virtual-size': number;
  readonly 'actual-size': number;
  readonly 'cluster-size'?: number;
  readonly 'dirty-flag': boolean;
  readonly 'backing-filename'?: string;
  readonly 'full-backing-filename'?: string;
  readonly 'backing-filename-format'?: string;
  readonly 'format-specific'?: Qcow2Specific | VmdkSpecific;
}

export interface VmdkSpecific {
  readonly type: 'vmdk';
  readonly data: {
    readonly 'create-type': string;
    readonly cid: number;
    readonly 'parent-cid': number;
    readonly extents: readonly {
      readonly filename: string;
      readonly format: 'SPARSE' | 'FLAT' | 'ZERO';
      readonly 'virtual-size': number;
      readonly 'cluster-size'?: number;
      readonly compressed?: boolean;
    }[];
  };
}

export interface Qcow2Specific {
  readonly type: 'qcow2';
  readonly data: {
    readonly compat: '0.10' | '1.1';
    readonly 'compression-type': string;
    readonly 'lazy-refcounts'?: boolean;
    readonly 'refcount-bits': number;
    readonly corrupt?: boolean;
    readonly 'extended-l2'?: boolean;
    readonly 'l1-size': number;
    readonly 'snapshot-count': number;
  };
}

/** An opened image: a BlockDevice that knows its backing chain. */
export interface Image extends BlockDevice {
  readonly format: ImageFormat;
  readonly path: string;
  /** The next layer down, or null at the bottom of the chain. */
  readonly backing: Image | null;
  /** The allocation map over [offset, offset + length), in order, contiguous, merged. */
  mapExtents(offset: number, length: number): Promise<MapExtent[]>;
  info(): ImageInfo;
}
