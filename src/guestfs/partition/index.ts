/**
 * Partition tables: `readPartitionTable(dev)` finds GPT, MBR or none (a filesystem on the
 * whole disk), and `openPartition` gives one partition as a BlockDevice.
 */
import { SliceBlockDevice, type BlockDevice } from '../../storage/block/index.js';
import { VirtkitError } from '../../util/errors.js';
import { findGptSectorSize, readGpt } from './gpt.js';
import { hasBootSignature, isProtectiveMbr, looksLikeMbr, mbrDiskId, readMbr } from './mbr.js';
import type { Partition, PartitionTable } from './types.js';

export type { Partition, PartitionKind, PartitionTable, PartitionTableType } from './types.js';

/**
 * GPT when LBA 1 (or its backup) says so and sector 0 is a protective MBR (or absent);
 * else MBR when sector 0 looks like one; else no table.
 * Throws `fs.corrupt` for a table that is present but unreadable.
 */
export async function readPartitionTable(dev: BlockDevice): Promise<PartitionTable> {
  const warnings: string[] = [];
  if (dev.size < 512) return { type: 'none', sectorSize: 512, partitions: [], warnings };
  const sector0 = await dev.read(0, 512);
  const gptSectorSize = await findGptSectorSize(dev);
  if (gptSectorSize !== undefined || isProtectiveMbr(sector0)) {
    const gpt = await readGpt(dev, gptSectorSize ?? 512, warnings);
    return { type: 'gpt', sectorSize: gpt.sectorSize, diskId: gpt.diskId, partitions: gpt.partitions, warnings };
  }
  if (hasBootSignature(sector0) && looksLikeMbr(sector0)) {
    const partitions = await readMbr(dev, sector0, warnings);
    return { type: 'mbr', sectorSize: 512, diskId: mbrDiskId(sector0), partitions, warnings };
  }
  return { type: 'none', sectorSize: 512, partitions: [], warnings };
}

/** Partition `number` as a read-only BlockDevice. Throws `partition.not-found`. */
export function openPartition(dev: BlockDevice, table: PartitionTable, number: number): BlockDevice {
  const p = table.partitions.find((x) => x.number === number);
  if (p === undefined) {
    const have = table.partitions.map((x) => x.number).join(', ') || 'none';
    throw new VirtkitError('partition.not-found', `no partition ${number} (partitions: ${have})`, { number });
  }
  if (p.kind === 'extended') {
    throw new VirtkitError('partition.not-found', `partition ${number} is an extended partition (a container of logicals)`, { number });
  }
  return new SliceBlockDevice(dev, p.start, p.size);
}

/** Partitions that can hold a filesystem (all but MBR extended containers). */
export function dataPartitions(table: PartitionTable): Partition[] {
  return table.partitions.filter((p) => p.kind !== 'extended');
}
