/** Building allocation maps, shared by the drivers. */
import type { BlockExtent } from '../block/index.js';
import type { MapExtent } from './types.js';

/** Append `e` to `out`, merging it into the last extent when both describe one contiguous run. */
export function pushMapExtent(out: MapExtent[], e: MapExtent): void {
  if (e.length === 0) return;
  const last = out[out.length - 1];
  if (last !== undefined && last.offset + last.length === e.offset && last.depth === e.depth
    && last.present === e.present && last.zero === e.zero && last.data === e.data && last.file === e.file
    && !last.compressed && !e.compressed
    && (last.hostOffset === undefined) === (e.hostOffset === undefined)
    && (last.hostOffset === undefined || last.hostOffset + last.length === e.hostOffset)) {
    out[out.length - 1] = { ...last, length: last.length + e.length };
    return;
  }
  out.push(e);
}

/** The BlockDevice view of a map: zero/allocated runs, merged. */
export function toBlockExtents(map: readonly MapExtent[]): BlockExtent[] {
  const out: BlockExtent[] = [];
  for (const e of map) {
    const last = out[out.length - 1];
    if (last !== undefined && last.zero === e.zero && last.allocated === e.data) {
      out[out.length - 1] = { ...last, length: last.length + e.length };
    } else {
      out.push({ offset: e.offset, length: e.length, zero: e.zero, allocated: e.data });
    }
  }
  return out;
}
