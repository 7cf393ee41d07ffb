/**
 * Sizes with units, as written in definitions: `256MiB`, `1GiB`, `512K`. Units are binary
 * (K, KiB, M, MiB, G, GiB, T, TiB all mean powers of 1024; B means bytes). A plain number
 * without a unit means bytes, the same as the normalized form a definition is stored in, so a
 * normalized definition parses back to itself.
 */
import { VirtkitError } from '../util/errors.js';

const UnitFactors: Readonly<Record<string, number>> = {
  '': 1,
  b: 1,
  k: 1024, kib: 1024,
  m: 1024 ** 2, mib: 1024 ** 2,
  g: 1024 ** 3, gib: 1024 ** 3,
  t: 1024 ** 4, tib: 1024 ** 4,
};

const SizePattern = /^\s*(\d{1,16})\s*([A-Za-z]{0,3})\s*$/;

/** Bytes in a size string or number; undefined when it is not a size. */
export function trySize(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  const match = SizePattern.exec(value);
  if (match === null) return undefined;
  const factor = UnitFactors[(match[2] ?? '').toLowerCase()];
  if (factor === undefined) return undefined;
  const bytes = Number(match[1]) * factor;
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

/**
 * Bytes in a size such as `256MiB`.
 * @throws VirtkitError('argument.invalid') when the text is not a size.
 */
export function parseSize(value: string | number): number {
  const bytes = trySize(value);
  if (bytes === undefined) {
    throw new VirtkitError('argument.invalid', `not a size: ${JSON.stringify(value)} (examples: 256MiB, 1GiB, 4096)`);
  }
  return bytes;
}

/** The shortest exact spelling of a byte count: `1GiB`, `256MiB`, `1536KiB`, `100B`. */
export function formatSize(bytes: number): string {
  for (const [unit, factor] of [['TiB', 1024 ** 4], ['GiB', 1024 ** 3], ['MiB', 1024 ** 2], ['KiB', 1024]] as const) {
    if (bytes >= factor && bytes % factor === 0) return `${bytes / factor}${unit}`;
  }
  return `${bytes}B`;
}
