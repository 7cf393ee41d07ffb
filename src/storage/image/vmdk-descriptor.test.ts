import { describe, expect, it } from 'vitest';
import { isVirtkitError } from '../../util/errors.js';
import { MAX_EXTENTS, NO_PARENT, parseVmdkDescriptor } from './vmdk-descriptor.js';

const HEAD = '# Disk DescriptorFile\nversion=1\nCID=22c6f9df\nparentCID=ffffffff\ncreateType="twoGbMaxExtentFlat"\n\n# Extent description\n';

function refusal(text: string): { code: string; line: unknown } {
  try {
    parseVmdkDescriptor(text);
  } catch (err) {
    if (isVirtkitError(err)) return { code: err.code, line: err.data['line'] };
    throw err;
  }
  throw new Error('expected a refusal');
}

describe('parseVmdkDescriptor', () => {
  it('reads fields and FLAT, SPARSE and ZERO extents, with CRLF line ends', () => {
    const d = parseVmdkDescriptor(`${HEAD}RW 4192256 FLAT "d-f001.vmdk" 0\r\nRDONLY 2048 SPARSE "d-s002.vmdk"\nRW 100 ZERO\n\n#DDB\nddb.adapterType = "ide"\n`);
    expect(d).toEqual({
      createType: 'twoGbMaxExtentFlat', cid: 0x22c6f9df, parentCid: NO_PARENT,
      extents: [
        { sectors: 4192256, type: 'FLAT', file: 'd-f001.vmdk', offsetSectors: 0 },
        { sectors: 2048, type: 'SPARSE', file: 'd-s002.vmdk', offsetSectors: 0 },
        { sectors: 100, type: 'ZERO', file: null, offsetSectors: 0 },
      ],
    });
  });

  it('stops at a NUL (embedded descriptors are padded)', () => {
    expect(parseVmdkDescriptor(`${HEAD}RW 8 FLAT "a" 0\n\0\0RW 8 FLAT "b" 0\n`).extents).toHaveLength(1);
  });

  it.each([
    ['no extents', HEAD, 'image.corrupt'],
    ['VMFS extents', `${HEAD}RW 8 VMFS "x.vmdk"\n`, 'image.unsupported'],
    ['NOACCESS extents', `${HEAD}NOACCESS 8 FLAT "x" 0\n`, 'image.unsupported'],
    ['a FLAT extent without a file', `${HEAD}RW 8 FLAT "" 0\n`, 'image.corrupt'],
    ['sizes beyond 2^53 bytes', `${HEAD}RW 99999999999999999999 FLAT "x" 0\n`, 'image.corrupt'],
    ['too many extents', HEAD + 'RW 1 ZERO\n'.repeat(MAX_EXTENTS + 1), 'image.unsupported'],
    ['an oversized descriptor', HEAD + '#'.repeat(70_000), 'image.unsupported'],
  ])('refuses %s', (_name, text, code) => {
    expect(refusal(text).code).toBe(code);
  });
});
