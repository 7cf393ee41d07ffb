/**
 * The FAT12/16/32 (VFAT) reader, registered with the filesystem detection registry. The probe
 * is here; the reader itself is imported when a FAT filesystem is opened.
 */
import type { BlockDevice } from '../../../storage/block/index.js';
import { PathFilesystem } from '../path.js';
import type { FilesystemType } from '../registry.js';
import { BOOT_SECTOR_SIZE, looksLikeFat } from './boot-sector.js';

export const fatFilesystem: FilesystemType = {
  name: 'fat',
  async probe(dev: BlockDevice): Promise<boolean> {
    if (dev.size < BOOT_SECTOR_SIZE) return false;
    return looksLikeFat(await dev.read(0, BOOT_SECTOR_SIZE));
  },
  async open(dev: BlockDevice) {
    const { FatDriver } = await import('./fat-fs.js');
    return new PathFilesystem(await FatDriver.open(dev));
  },
};
