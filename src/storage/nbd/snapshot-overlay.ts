import { mkdtemp, open, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkRange, readInto, type BlockDevice, type BlockExtent } from '../block/index.js';

/** The write side of an export: only a snapshot overlay has one, the image itself never does. */
export interface BlockWriter {
  write(offset: number, data: Uint8Array): Promise<void>;
  /** Make [offset, offset + length) read as zeros. */
  writeZeroes(offset: number, length: number): Promise<void>;
  /** Discard [offset, offset + length); here it reads back as zeros, which NBD permits. */
  trim(offset: number, length: number): Promise<void>;
  flush(): Promise<void>;
}

/** What the overlay holds for one cluster; a cluster absent from the map reads from the base. */
type ClusterState = 'data' | 'zero';

/** One run of clusters that read from the same place. */
interface Run {
  readonly source: 'base' | ClusterState;
  readonly offset: number;
  readonly length: number;
}

export const DEFAULT_OVERLAY_CLUSTER = 64 * 1024;

/**
 * A throwaway copy-on-write layer over a read-only BlockDevice (qemu-nbd's --snapshot).
 * Written clusters go to an unlinked, sparse temporary file at the same offsets as on the
 * device; clusters set to zero are only recorded in the map. The base device is never written:
 * it is opened read-only by its driver anyway, and the overlay vanishes with the process.
 */
export class SnapshotOverlay implements BlockDevice, BlockWriter {
  readonly size: number;
  readonly format: string;
  private readonly clusters = new Map<number, ClusterState>();
  /** Serialises writers: a partial-cluster write is a read-modify-write of the whole cluster. */
  private writeLock: Promise<void> = Promise.resolve();

  private constructor(
    private readonly base: BlockDevice,
    private readonly file: FileHandle,
    readonly clusterSize: number,
  ) {
    this.size = base.size;
    this.format = base.format;
  }

  /** Creates the overlay file in `dir` (default: the OS temporary directory) and unlinks it at once. */
  static async create(base: BlockDevice, opts: { dir?: string; clusterSize?: number } = {}): Promise<SnapshotOverlay> {
    const clusterSize = opts.clusterSize ?? DEFAULT_OVERLAY_CLUSTER;
    const dir = await mkdtemp(join(opts.dir ?? tmpdir(), 'virtkit-nbd-'));
    try {
      const file = await open(join(dir, 'overlay'), 'w+', 0o600);
      return new SnapshotOverlay(base, file, clusterSize);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this, offset, length);
    if (this.clusters.size === 0) return this.base.read(offset, length);
    const runs = this.runs(offset, length);
    if (runs.length === 1 && runs[0]!.source === 'base') return this.base.read(offset, length);
    const out = Buffer.allocUnsafe(length);
    await Promise.all(runs.map(async (run) => {
      const at = run.offset - offset;
      if (run.source === 'zero') out.fill(0, at, at + run.length);
      else if (run.source === 'data') await this.readFile(out, at, run.length, run.offset);
      else await readInto(this.base, run.offset, out.subarray(at, at + run.length));
    }));
    return out;
  }

  /** Fills the caller's buffer; straight from the base device while nothing has been written. */
  async readInto(offset: number, target: Uint8Array): Promise<void> {
    checkRange(this, offset, target.length);
    if (this.clusters.size === 0) await readInto(this.base, offset, target);
    else target.set(await this.read(offset, target.length));
  }

  async blockStatus(offset: number, length: number): Promise<BlockExtent[]> {
    checkRange(this, offset, length);
    if (this.clusters.size === 0) return this.base.blockStatus(offset, length);
    const out: BlockExtent[] = [];
    for (const run of this.runs(offset, length)) {
      if (run.source === 'base') out.push(...await this.base.blockStatus(run.offset, run.length));
      else out.push({ offset: run.offset, length: run.length, zero: run.source === 'zero', allocated: true });
    }
    return coalesce(out);
  }

  write(offset: number, data: Uint8Array): Promise<void> {
    checkRange(this, offset, data.length);
    return this.exclusive(async () => {
      let pos = offset;
      const end = offset + data.length;
      while (pos < end) {
        const cStart = this.clusterStart(pos);
        const cLen = this.clusterLength(cStart);
        if (pos === cStart && end >= cStart + cLen) {
          // Whole clusters: one write for the full run, straight from the caller's buffer.
          let runEnd = cStart + cLen;
          while (runEnd < end && end >= runEnd + this.clusterLength(runEnd)) runEnd += this.clusterLength(runEnd);
          await this.writeFile(data.subarray(pos - offset, runEnd - offset), pos);
          this.mark(pos, runEnd, 'data');
          pos = runEnd;
        } else {
          const n = Math.min(end, cStart + cLen) - pos;
          await this.patchCluster(cStart, pos - cStart, data.subarray(pos - offset, pos - offset + n));
          pos += n;
        }
      }
    });
  }

  writeZeroes(offset: number, length: number): Promise<void> {
    checkRange(this, offset, length);
    return this.exclusive(async () => {
      let pos = offset;
      const end = offset + length;
      while (pos < end) {
        const cStart = this.clusterStart(pos);
        const cLen = this.clusterLength(cStart);
        const n = Math.min(end, cStart + cLen) - pos;
        if (n === cLen) this.clusters.set(cStart / this.clusterSize, 'zero');
        else await this.patchCluster(cStart, pos - cStart, new Uint8Array(n));
        pos += n;
      }
    });
  }

  trim(offset: number, length: number): Promise<void> {
    return this.writeZeroes(offset, length);
  }

  /** Nothing to persist: the overlay is thrown away when the export ends. */
  async flush(): Promise<void> {}

  /** Closes the overlay file (freeing its space); the base device stays open for its owner. */
  async close(): Promise<void> {
    await this.writeLock;
    await this.file.close();
  }

  private exclusive(fn: () => Promise<void>): Promise<void> {
    const next = this.writeLock.then(fn);
    this.writeLock = next.catch(() => undefined);
    return next;
  }

  /** Read-modify-write of one cluster that a request covers only in part. */
  private async patchCluster(cStart: number, at: number, bytes: Uint8Array): Promise<void> {
    const cLen = this.clusterLength(cStart);
    const cluster = Buffer.from(await this.read(cStart, cLen));
    cluster.set(bytes, at);
    await this.writeFile(cluster, cStart);
    this.clusters.set(cStart / this.clusterSize, 'data');
  }

  private mark(start: number, end: number, state: ClusterState): void {
    for (let c = start / this.clusterSize; c * this.clusterSize < end; c++) this.clusters.set(c, state);
  }

  private clusterStart(pos: number): number {
    return Math.floor(pos / this.clusterSize) * this.clusterSize;
  }

  /** The last cluster is shorter when the size is not a multiple of the cluster size. */
  private clusterLength(cStart: number): number {
    return Math.min(this.clusterSize, this.size - cStart);
  }

  /** Splits [offset, offset + length) into maximal runs that read from the same source. */
  private runs(offset: number, length: number): Run[] {
    const runs: Run[] = [];
    const end = offset + length;
    let pos = offset;
    while (pos < end) {
      const cStart = this.clusterStart(pos);
      const source = this.clusters.get(cStart / this.clusterSize) ?? 'base';
      const n = Math.min(end, cStart + this.clusterLength(cStart)) - pos;
      const last = runs[runs.length - 1];
      if (last && last.source === source) runs[runs.length - 1] = { ...last, length: last.length + n };
      else runs.push({ source, offset: pos, length: n });
      pos += n;
    }
    return runs;
  }

  private async readFile(out: Buffer, at: number, length: number, position: number): Promise<void> {
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.file.read(out, at + done, length - done, position + done);
      // A short file means the cluster was never fully written: unreachable, but zeros are right.
      if (bytesRead === 0) {
        out.fill(0, at + done, at + length);
        return;
      }
      done += bytesRead;
    }
  }

  private async writeFile(data: Uint8Array, position: number): Promise<void> {
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await this.file.write(data, done, data.length - done, position + done);
      done += bytesWritten;
    }
  }
}

/** Merges neighbouring extents with the same status, so clients see few, long extents. */
export function coalesce(extents: BlockExtent[]): BlockExtent[] {
  const out: BlockExtent[] = [];
  for (const e of extents) {
    const last = out[out.length - 1];
    if (last && last.zero === e.zero && last.allocated === e.allocated && last.offset + last.length === e.offset) {
      out[out.length - 1] = { ...last, length: last.length + e.length };
    } else {
      out.push(e);
    }
  }
  return out;
}
