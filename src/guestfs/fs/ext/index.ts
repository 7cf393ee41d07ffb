/**
 * The ext2/3/4 reader, registered with the filesystem detection registry. The probe is here;
 * the reader itself is imported when an ext filesystem is opened (docs/performance.md, "CLI
 * start-up": `fs cat` loads the reader of the filesystem the image holds, not all of them).
 */
import type { BlockDevice } from '../../../storage/block/index.js';
import { PathFilesystem } from '../path.js';
import type { FilesystemType } from '../registry.js';
import type { ReadPolicy } from '../types.js';
import { SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE, hasExtMagic } from './superblock.js';

export const extFilesystem: FilesystemType = {
  name: 'ext',
  async probe(dev: BlockDevice): Promise<boolean> {
    if (dev.size < SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE) return false;
    return hasExtMagic(await dev.read(SUPERBLOCK_OFFSET, 0x40));
  },
  async open(dev: BlockDevice, policy?: ReadPolicy) {
    const { ExtDriver } = await import('./ext-fs.js');
    return new PathFilesystem(await ExtDriver.open(dev, policy));
  },
};
