/**
 * The File Allocation Table: entries read in cached chunks, cluster chains walked with hard
 * bounds. A chain may not be longer than the clusters that exist (or than its caller's
 * limit): a longer one loops. Free, reserved, bad or out-of-range links are `fs.corrupt`.
 */
import type { BlockDevice } from '../../../storage/block/index.js';
import { corrupt } from '../../bytes.js';
import { LruCache } from '../../lru.js';
import type { BootSector } from './boot-sector.js';

const CHUNK = 32 * 1024;
const CACHE_BYTES = 8 << 20;

const LIMITS = {
  fat12: { mask: 0xfff, bad: 0xff7, eoc: 0xff8 },
  fat16: { mask: 0xffff, bad: 0xfff7, eoc: 0xfff8 },
  fat32: { mask: 0x0fffffff, bad: 0x0ffffff7, eoc: 0x0ffffff8 },
} as const;

export interface ChainRequest {
  /** Clusters wanted; with `untilEnd` the most allowed before the chain must end. */
  readonly count: number;
  /** Require an end-of-chain mark within `count` clusters (directories). */
  readonly untilEnd: boolean;
  readonly structure: string;
  /** Device offset of the directory entry that starts the chain, for errors. */
  readonly at: number;
}

export class FatTable {
  private readonly chunks = new LruCache<number, Uint8Array>(CACHE_BYTES, (c) => c.length);
  private readonly start: number;
  private readonly bytes: number;
  private readonly limits: (typeof LIMITS)[keyof typeof LIMITS];

  constructor(private readonly dev: BlockDevice, private readonly bs: BootSector) {
    this.start = bs.fatOffset + bs.activeFat * bs.fatSectors * bs.bytesPerSector;
    this.bytes = bs.fatSectors * bs.bytesPerSector;
    this.limits = LIMITS[bs.type];
  }

  get maxCluster(): number {
    return this.bs.clusterCount + 1;
  }

  private async byteAt(index: number): Promise<number> {
    const chunkNo = Math.floor(index / CHUNK);
    let chunk = this.chunks.get(chunkNo);
    if (chunk === undefined) {
      const offset = this.start + chunkNo * CHUNK;
      const length = Math.min(CHUNK, this.bytes - chunkNo * CHUNK);
      if (offset + length > this.dev.size) throw corrupt('fat table', offset, `the FAT lies beyond the end of the device (${this.dev.size} bytes)`);
      chunk = await this.dev.read(offset, length);
      this.chunks.set(chunkNo, chunk);
    }
    return chunk[index - chunkNo * CHUNK]!;
  }

  /** The FAT entry of cluster `n` (2..maxCluster). */
  async entry(n: number): Promise<number> {
    switch (this.bs.type) {
      case 'fat12': {
        const at = n + (n >> 1);
        const v = (await this.byteAt(at)) | ((await this.byteAt(at + 1)) << 8);
        return (n & 1) === 0 ? v & 0xfff : v >> 4;
      }
      case 'fat16':
        return (await this.byteAt(n * 2)) | ((await this.byteAt(n * 2 + 1)) << 8);
      case 'fat32': {
        const at = n * 4;
        const v = (await this.byteAt(at)) | ((await this.byteAt(at + 1)) << 8) | ((await this.byteAt(at + 2)) << 16) | ((await this.byteAt(at + 3)) << 24);
        return (v >>> 0) & this.limits.mask;
      }
    }
  }

  /** The FAT's device offset of cluster `n`'s entry, for errors. */
  entryOffset(n: number): number {
    const perEntry = this.bs.type === 'fat12' ? 1.5 : this.bs.type === 'fat16' ? 2 : 4;
    return this.start + Math.floor(n * perEntry);
  }

  /** Walks the chain from `first` as `req` says. */
  async chain(first: number, req: ChainRequest): Promise<number[]> {
    if (req.count === 0) return [];
    if (first < 2 || first > this.maxCluster) {
      throw corrupt(req.structure, req.at, `first cluster ${first} is outside 2..${this.maxCluster}`, { cluster: first });
    }
    const limit = Math.min(req.count, this.bs.clusterCount);
    const clusters = [first];
    let cur = first;
    for (;;) {
      if (!req.untilEnd && clusters.length >= req.count) return clusters;
      const next = await this.entry(cur);
      if (next >= this.limits.eoc) break;
      if (next === this.limits.bad) {
        throw corrupt('fat table', this.entryOffset(cur), `cluster ${cur} links to a bad cluster`, { cluster: cur });
      }
      if (next < 2 || next > this.maxCluster) {
        throw corrupt('fat table', this.entryOffset(cur), `cluster ${cur} links to ${next}, outside 2..${this.maxCluster}`, { cluster: cur });
      }
      if (clusters.length >= limit) {
        throw corrupt('fat table', this.entryOffset(cur),
          `the chain from cluster ${first} is longer than ${limit} clusters: it loops or exceeds its ${req.structure === 'fat directory' ? 'directory' : 'size'} limit`,
          { cluster: first });
      }
      clusters.push(next);
      cur = next;
    }
    if (!req.untilEnd && clusters.length < req.count) {
      throw corrupt(req.structure, req.at, `the chain from cluster ${first} ends after ${clusters.length} clusters, the size needs ${req.count}`, { cluster: first });
    }
    return clusters;
  }
}
