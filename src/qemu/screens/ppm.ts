/**
 * The binary PPM (P6) that QEMU's `screendump` writes: `P6\n<width> <height>\n255\n` then
 * width * height RGB triplets. Read from a file QEMU wrote for a guest whose screen size the
 * guest chooses, so it is checked like untrusted input: bounded sizes, typed errors (fuzzed in
 * ppm.test.ts).
 */
import { VirtkitError } from '../../util/errors.js';

export interface RgbImage {
  width: number;
  height: number;
  /** width * height * 3 bytes, rows top to bottom. */
  rgb: Buffer;
}

/** Larger than any display QEMU's VGA models offer (16384 x 16384 would be 768 MiB). */
export const MaxScreenPixels = 8192 * 8192;

function bad(why: string): VirtkitError {
  return new VirtkitError('image.corrupt', `screendump: not a P6 PPM image: ${why}`, { why });
}

export function parsePpm(data: Buffer): RgbImage {
  let pos = 0;
  const token = (): string => {
    for (;;) {
      while (pos < data.length && /\s/.test(String.fromCharCode(data[pos]!))) pos++;
      if (data[pos] !== 0x23) break; // '#': a comment to the end of the line
      while (pos < data.length && data[pos] !== 0x0a) pos++;
    }
    const start = pos;
    while (pos < data.length && pos - start < 16 && !/\s/.test(String.fromCharCode(data[pos]!))) pos++;
    return data.subarray(start, pos).toString('latin1');
  };
  if (token() !== 'P6') throw bad('no P6 magic');
  const numbers = [token(), token(), token()].map((t) => (/^[0-9]{1,9}$/.test(t) ? Number(t) : NaN));
  const [width, height, maxval] = numbers as [number, number, number];
  if (!(width > 0 && height > 0)) throw bad('width and height must be positive integers');
  if (maxval !== 255) throw bad(`maxval must be 255, got ${Number.isNaN(maxval) ? 'none' : maxval}`);
  if (width * height > MaxScreenPixels) throw bad(`${width}x${height} is larger than ${MaxScreenPixels} pixels`);
  // exactly one whitespace byte ends the header
  if (pos >= data.length || !/\s/.test(String.fromCharCode(data[pos]!))) throw bad('header not ended by whitespace');
  pos++;
  const size = width * height * 3;
  if (data.length - pos < size) throw bad(`${data.length - pos} bytes of pixels, ${size} expected for ${width}x${height}`);
  return { width, height, rgb: data.subarray(pos, pos + size) };
}
