/**
 * Overlapping in-flight disk writes: a virtio-blk write request submitted while another write
 * to an overlapping sector range of the same disk is still in flight (QEMU does not order
 * them: which one lands last is up to the host). From `virtio_blk_handle_write` (a request
 * starts: its sector range) and `virtio_blk_req_complete` (it is answered):
 *
 *   virtkit trace NAME --event virtio_blk_handle_write --event virtio_blk_req_complete --output w.jsonl --duration 10
 *   node dist/examples/overlapping-writes.js w.jsonl
 */
import { pathToFileURL } from 'node:url';
import { Analyzer, runAnalyzer, type TraceArgs, type TraceRecord } from '../src/observability/index.js';
import { runExampleMain } from './example-main.js';

export interface WriteRange {
  vdev: string;
  req: string;
  /** First sector and sector count (512-byte sectors). */
  sector: number;
  nsectors: number;
  time: string;
}

export interface Overlap {
  first: WriteRange;
  second: WriteRange;
}

function overlaps(a: WriteRange, b: WriteRange): boolean {
  return a.vdev === b.vdev && a.sector < b.sector + b.nsectors && b.sector < a.sector + a.nsectors;
}

export class OverlappingWrites extends Analyzer {
  writes = 0;
  completions = 0;
  /** The largest number of writes in flight at once. */
  maxInflight = 0;
  readonly overlaps: Overlap[] = [];
  private readonly inflight = new Map<string, WriteRange>();

  virtio_blk_handle_write({ vdev, req, sector, nsectors }: TraceArgs, rec: TraceRecord): void {
    this.writes++;
    const w: WriteRange = { vdev: String(vdev), req: String(req), sector: Number(sector), nsectors: Number(nsectors), time: rec.time };
    for (const other of this.inflight.values()) if (overlaps(other, w)) this.overlaps.push({ first: other, second: w });
    this.inflight.set(`${w.vdev}/${w.req}`, w);
    this.maxInflight = Math.max(this.maxInflight, this.inflight.size);
  }

  virtio_blk_req_complete({ vdev, req }: TraceArgs): void {
    this.completions++;
    this.inflight.delete(`${String(vdev)}/${String(req)}`);
  }

  report(): string {
    const lines = [`${this.writes} writes, ${this.completions} completions, at most ${this.maxInflight} in flight, ${this.overlaps.length} overlapping`];
    for (const o of this.overlaps) {
      lines.push(`  sectors ${o.second.sector}+${o.second.nsectors} (req ${o.second.req}) while ${o.first.sector}+${o.first.nsectors} (req ${o.first.req}) was in flight`);
    }
    return lines.join('\n');
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await runExampleMain('overlapping-writes', async (file) => (await runAnalyzer(new OverlappingWrites(), file)).report());
}
