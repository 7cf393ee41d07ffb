import { inflateSync } from 'node:zlib';
import { describe, expect, test } from 'vitest';
import { isVirtkitError } from '../../util/errors.js';
import { crc32, encodePng, parseKeys, parsePpm, pngSize, qcodeOf } from './index.js';

function ppm(width: number, height: number, fill = 7): Buffer {
  return Buffer.concat([Buffer.from(`P6\n${width} ${height}\n255\n`), Buffer.alloc(width * height * 3, fill)]);
}

describe('PPM to PNG', () => {
  test('a screendump becomes a PNG of the same size whose rows inflate back to the pixels', () => {
    const image = parsePpm(ppm(5, 3));
    expect([image.width, image.height, image.rgb.length]).toEqual([5, 3, 45]);
    const png = encodePng(image);
    expect(pngSize(png)).toEqual({ width: 5, height: 3 });
    const idatLength = png.readUInt32BE(33);
    const raw = inflateSync(png.subarray(41, 41 + idatLength));
    expect(raw.length).toBe((5 * 3 + 1) * 3);
    expect([...raw.subarray(0, 4)]).toEqual([0, 7, 7, 7]);
  });
  test('comments in the header are skipped', () => {
    expect(parsePpm(Buffer.concat([Buffer.from('P6\n# by QEMU\n2 1\n255\n'), Buffer.alloc(6)])).width).toBe(2);
  });
  test('crc32 is the PNG one', () => {
    expect(crc32(Buffer.from('IEND'))).toBe(0xae426082);
  });
  test.each([
    ['no magic', Buffer.from('P5\n1 1\n255\n\0')],
    ['short pixels', Buffer.from('P6\n2 2\n255\n\0\0\0')],
    ['maxval', Buffer.from('P6\n1 1\n65535\n\0\0\0\0\0\0')],
    ['zero size', Buffer.from('P6\n0 1\n255\n')],
    ['huge', Buffer.from('P6\n100000 100000\n255\n')],
    ['empty', Buffer.alloc(0)],
  ])('%s: image.corrupt', (_name, data) => {
    let caught: unknown;
    try { parsePpm(data); } catch (err) { caught = err; }
    expect(isVirtkitError(caught, 'image.corrupt')).toBe(true);
  });
  test('fuzz: 3000 mutated and random headers give an image or image.corrupt, never anything else', () => {
    let seed = 42;
    const random = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
    const base = ppm(4, 4);
    for (let i = 0; i < 3000; i++) {
      const data = Buffer.from(i % 3 === 0 ? Buffer.alloc(random(64), random(256)) : base.subarray(0, random(base.length + 1)));
      for (let k = random(6); k > 0; k--) if (data.length > 0) data[random(data.length)] = random(256);
      try {
        const image = parsePpm(data);
        expect(image.rgb.length).toBe(image.width * image.height * 3);
      } catch (err) {
        expect(isVirtkitError(err, 'image.corrupt')).toBe(true);
      }
    }
  });
});

describe('key names', () => {
  test('qcodes, linux names in any case, and dash combinations', () => {
    expect(parseKeys(['ctrl-alt-delete'])).toEqual(['ctrl', 'alt', 'delete']);
    expect(parseKeys(['KEY_LEFTCTRL', 'key_leftalt', 'KEY_F2'])).toEqual(['ctrl', 'alt', 'f2']);
    expect(parseKeys(['KEY_ENTER', 'KEY_SPACE', 'KEY_A', 'KEY_1', 'KEY_KP5', 'KEY_102ND'])).toEqual(['ret', 'spc', 'a', '1', 'kp_5', 'less']);
    expect(parseKeys(['ret', 'A', 'kp_subtract'])).toEqual(['ret', 'a', 'kp_subtract']);
    expect(qcodeOf('KEY_NOSUCH')).toBeUndefined();
  });
  test('unknown names, none, and more than 16 are argument.invalid', () => {
    for (const keys of [['KEY_NOSUCH'], ['ctrl-'], [], Array.from({ length: 17 }, () => 'a'), ['a-b-\u0000']]) {
      let caught: unknown;
      try { parseKeys(keys); } catch (err) { caught = err; }
      expect(isVirtkitError(caught, 'argument.invalid'), JSON.stringify(keys)).toBe(true);
    }
  });
  test('fuzz: random names give qcodes or argument.invalid', () => {
    let seed = 7;
    const random = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
    const alphabet = 'KEY_abcdefghijklmnopqrstuvwxyz0123456789-_ \u00e9\u0000';
    for (let i = 0; i < 3000; i++) {
      const name = Array.from({ length: random(20) }, () => alphabet[random(alphabet.length)]).join('');
      try {
        for (const code of parseKeys([name])) expect(qcodeOf(code)).toBe(code);
      } catch (err) {
        expect(isVirtkitError(err, 'argument.invalid')).toBe(true);
      }
    }
  });
});
