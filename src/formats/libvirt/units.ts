/**
 * libvirt's scaled integers (`<memory unit='MiB'>512</memory>`), read as libvirt's
 * virScaleInteger reads them: `b`, `byte`, `bytes`; a letter k, m, g, t, p, e alone or with
 * `iB` is a power of 1024, with `B` a power of 1000; case does not matter.
 */
import { VirtkitError } from '../../util/errors.js';
import { escapeForTerminal } from '../../util/terminal-text.js';

/** A document value as shown in a message: JSON-quoted, control characters escaped (it may reach a terminal). */
function quoted(value: unknown): string {
  return escapeForTerminal(JSON.stringify(value) ?? 'nothing');
}

/** Every unit spelling libvirt documents, for the docs table. */
export const LibvirtUnits = ['b', 'bytes', 'KB', 'k', 'KiB', 'MB', 'M', 'MiB', 'GB', 'G', 'GiB', 'TB', 'T', 'TiB', 'PB', 'P', 'PiB', 'EB', 'E', 'EiB'] as const;

const Exponents: Readonly<Record<string, number>> = { k: 1, m: 2, g: 3, t: 4, p: 5, e: 6 };

/** The multiplier of a unit, or undefined when libvirt would refuse it. */
export function unitScale(unit: string): bigint | undefined {
  const lower = unit.toLowerCase();
  if (lower === 'b' || lower === 'byte' || lower === 'bytes') return 1n;
  const exponent = Exponents[lower[0] ?? ''];
  if (exponent === undefined) return undefined;
  const rest = lower.slice(1);
  const base = rest === '' || rest === 'ib' ? 1024n : rest === 'b' ? 1000n : undefined;
  return base === undefined ? undefined : base ** BigInt(exponent);
}

/**
 * A scaled integer in bytes. `defaultUnit` is the element's own (KiB for memory).
 * @throws VirtkitError('definition.invalid') naming the XPath for a bad number, an unknown
 *         unit, or a value beyond 2^53 bytes (no JSON number holds it exactly).
 */
export function scaledBytes(value: string, unit: string | undefined, defaultUnit: string, xpath: string): number {
  const digits = value.trim();
  if (!/^[0-9]{1,40}$/.test(digits)) {
    throw new VirtkitError('definition.invalid', `${xpath}: must be a whole number, got ${quoted(digits.slice(0, 40))}`, { xpath, rule: 'integer' });
  }
  const scale = unitScale(unit ?? defaultUnit);
  if (scale === undefined) {
    throw new VirtkitError('definition.invalid', `${xpath}/@unit: must be one of ${LibvirtUnits.join(', ')}, got ${quoted(unit)}`, { xpath: `${xpath}/@unit`, rule: 'unit' });
  }
  const bytes = BigInt(digits) * scale;
  if (bytes > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new VirtkitError('definition.invalid', `${xpath}: ${digits} ${unit ?? defaultUnit} overflows (more than 2^53 bytes)`, { xpath, rule: 'overflow' });
  }
  return Number(bytes);
}

/** The largest unit that divides `bytes` exactly, for export (libvirt's own output uses KiB). */
export function exactUnit(bytes: number): { value: number; unit: 'KiB' | 'MiB' | 'GiB' | 'bytes' } {
  for (const [unit, scale] of [['GiB', 1024 ** 3], ['MiB', 1024 ** 2], ['KiB', 1024]] as const) {
    if (bytes % scale === 0 && bytes > 0) return { value: bytes / scale, unit };
  }
  return { value: bytes, unit: 'bytes' };
}
