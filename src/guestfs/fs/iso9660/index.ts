/**
 * The ISO 9660 reader (Rock Ridge, Joliet), registered with the filesystem detection registry.
 * The probe is here; the reader itself is imported when an ISO 9660 filesystem is opened.
 */
import type { BlockDevice } from '../../../storage/block/index.js';
import { PathFilesystem } from '../path.js';
import type { FilesystemType } from '../registry.js';
import { DESCRIPTOR_AREA, DESCRIPTOR_SIZE, hasIsoSignature } from './descriptors.js';

export type { IsoNaming } from './iso-fs.js';

export const iso9660Filesystem: FilesystemType = {
  name: 'iso9660',
  async probe(dev: BlockDevice): Promise<boolean> {
    if (dev.size < DESCRIPTOR_AREA + DESCRIPTOR_SIZE) return false;
    return hasIsoSignature(await dev.read(DESCRIPTOR_AREA, 8));
  },
  async open(dev: BlockDevice) {
    const { IsoDriver } = await import('./iso-fs.js');
    return new PathFilesystem(await IsoDriver.open(dev));
  },
};
