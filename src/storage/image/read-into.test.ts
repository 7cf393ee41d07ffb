import { describe, expect, it } from 'vitest';
import { readInto, SliceBlockDevice, type BlockDevice } from '../block/index.js';
import { isVirtkitError } from '../../util/errors.js';
import { MemorySource } from './byte-source.js';
import { RawImage } from './raw.js';

const bytes = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7) & 0xff));

describe('readInto', () => {
  it('reads through a device\'s readInto, and through read for devices without one', async () => {
    const raw = RawImage.fromFile(new MemorySource(bytes));
    const bare: BlockDevice = { size: raw.size, format: 'raw', read: (o, l) => raw.read(o, l), blockStatus: (o, l) => raw.blockStatus(o, l), close: async () => {} };
    for (const dev of [raw, bare]) {
      const target = Buffer.alloc(100, 0xee);
      await readInto(dev, 1000, target);
      expect(target.equals(bytes.subarray(1000, 1100))).toBe(true);
    }
  });

  it('slices read into the caller\'s buffer at their offset and stay inside their window', async () => {
    const slice = new SliceBlockDevice(RawImage.fromFile(new MemorySource(bytes)), 512, 1024);
    const target = Buffer.alloc(24);
    await slice.readInto(1000, target);
    expect(target.equals(bytes.subarray(1512, 1536))).toBe(true);
    const err = await slice.readInto(1010, Buffer.alloc(24)).then(() => null, (e: unknown) => e);
    expect(isVirtkitError(err, 'image.io')).toBe(true);
  });
});
