/**
 * Batched reads for tree walks: the block ranges several directories need, sorted by their
 * place on the device and merged, so that neighbouring directories (mke2fs and the kernel
 * put a directory's blocks near its parent's) come in one request instead of one each.
 * Ranges may overlap or repeat (a hostile image can map one block into many directories):
 * each is still served, from the one read that covers it.
 */

/** A range of blocks one directory needs. */
export interface BlockWant {
  readonly physical: number;
  readonly count: number;
}

/** One request to the device: `count` blocks from `first`. */
export interface PlannedRead {
  readonly first: number;
  readonly count: number;
}

export interface ReadPlan {
  readonly reads: PlannedRead[];
  /** For each want, in the order given: the read that covers it. */
  readonly readOf: number[];
}

export interface PlanLimits {
  /** No merged read grows beyond this many blocks (a single longer want is read alone). */
  readonly maxBlocks: number;
  /** Wants at most this many blocks apart share a read (the gap is read and dropped). */
  readonly gapBlocks: number;
  /** Total gap blocks read over the whole plan, so merging never reads much more than was wanted. */
  readonly maxGapTotal: number;
}

export function planReads(wants: readonly BlockWant[], limits: PlanLimits): ReadPlan {
  const order = wants.map((_, i) => i).sort((a, b) => wants[a]!.physical - wants[b]!.physical);
  const reads: { first: number; end: number }[] = [];
  const readOf = new Array<number>(wants.length);
  let gapTotal = 0;
  for (const i of order) {
    const w = wants[i]!;
    const end = w.physical + w.count;
    const last = reads[reads.length - 1];
    if (last !== undefined) {
      const gap = Math.max(0, w.physical - last.end);
      const grown = Math.max(last.end, end) - last.first;
      if (gap <= limits.gapBlocks && grown <= limits.maxBlocks && gapTotal + gap <= limits.maxGapTotal) {
        gapTotal += gap;
        last.end = Math.max(last.end, end);
        readOf[i] = reads.length - 1;
        continue;
      }
    }
    reads.push({ first: w.physical, end });
    readOf[i] = reads.length - 1;
  }
  return { reads: reads.map((r) => ({ first: r.first, count: r.end - r.first })), readOf };
}
