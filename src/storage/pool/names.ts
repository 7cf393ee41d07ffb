/**
 * Pool and volume names. A volume name is one safe path segment inside its pool directory and
 * declares the volume's format by its extension (`.qcow2` is qcow2, `.raw` and `.img` are
 * raw): the format is never guessed from the file's content, and any tool (`virtkit img info`,
 * `qemu-img`) reading the file finds the same answer in its name.
 */
import { VirtkitError } from '../../util/errors.js';

export const VolumeFormats = ['raw', 'qcow2'] as const;
export type VolumeFormat = (typeof VolumeFormats)[number];

/** A single path segment: no '/', no leading '.', so never '.', '..' or a hidden temporary file. */
const VolumeNamePattern = /^[A-Za-z0-9][A-Za-z0-9_.+-]{0,254}$/;
/** Pool names share the domain names' alphabet (they are store path segments and URL parts). */
const PoolNamePattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

const FormatByExtension: Record<string, VolumeFormat> = { '.qcow2': 'qcow2', '.raw': 'raw', '.img': 'raw' };

/** The format a volume name declares, or undefined when its extension declares none. */
export function declaredFormat(name: string): VolumeFormat | undefined {
  const dot = name.lastIndexOf('.');
  return dot <= 0 ? undefined : FormatByExtension[name.slice(dot).toLowerCase()];
}

/** True for a name that is a valid volume name with a format-declaring extension. */
export function isVolumeName(name: string): boolean {
  return VolumeNamePattern.test(name) && declaredFormat(name) !== undefined;
}

/**
 * Checks a volume name and returns the format it declares.
 * @throws VirtkitError('volume.invalid-name') naming what is wrong.
 */
export function checkVolumeName(name: string): VolumeFormat {
  const shown = JSON.stringify(name.length > 80 ? `${name.slice(0, 80)}...` : name);
  if (!VolumeNamePattern.test(name)) {
    throw new VirtkitError('volume.invalid-name',
      `${shown} is not a volume name: one path segment of letters, digits, "_", ".", "+" or "-", starting with a letter or digit, at most 255 characters`,
      { name });
  }
  const format = declaredFormat(name);
  if (format === undefined) {
    throw new VirtkitError('volume.invalid-name',
      `${shown} does not declare its format: volume names end in .qcow2 (qcow2), .raw or .img (raw)`, { name });
  }
  return format;
}

/**
 * Checks that a name declares `format` (what `vol-create-as --format` asked for).
 * @throws VirtkitError('volume.invalid-name') when the extension says otherwise.
 */
export function checkVolumeNameFormat(name: string, format: VolumeFormat): void {
  const declared = checkVolumeName(name);
  if (declared !== format) {
    throw new VirtkitError('volume.invalid-name',
      `"${name}" declares format ${declared} by its extension, but ${format} was asked for: name it ${suggestName(name, format)}`,
      { name, format, declared });
  }
}

function suggestName(name: string, format: VolumeFormat): string {
  const dot = name.lastIndexOf('.');
  return `${dot > 0 ? name.slice(0, dot) : name}.${format}`;
}

/** @throws VirtkitError('pool.invalid') for a name that is not a pool name. */
export function checkPoolName(name: string): void {
  if (!PoolNamePattern.test(name)) {
    throw new VirtkitError('pool.invalid',
      `${JSON.stringify(name.slice(0, 80))} is not a pool name: letters, digits, "_", "." or "-", starting with a letter or digit, at most 64 characters`,
      { name });
  }
}

/** Splits a definition's `pool/volume` reference. */
export function parseVolumeRef(ref: string): { pool: string; volume: string } {
  const slash = ref.indexOf('/');
  if (slash <= 0 || slash !== ref.lastIndexOf('/')) {
    throw new VirtkitError('volume.invalid-name', `"${ref}" is not a volume reference: write it as pool/volume`, { volume: ref });
  }
  return { pool: ref.slice(0, slash), volume: ref.slice(slash + 1) };
}
