/**
 * The one rule for an image file's format, used by every command that opens one (`img`,
 * `fs`, `inspect`, `bootinfo`, `nbd`): the format the user named, else the one the file's
 * name states by its extension, never the content. A raw guest disk can hold a qcow2 header
 * that names any host file as its backing file; reading the content to pick the format
 * would let the guest choose what the host reads. docs/images.md states the rule.
 */
import { extname } from 'node:path';
import { VirtkitError } from '../../util/errors.js';
import { ImageFormats, type ImageFormat } from './types.js';

/** What each extension states. `.iso` is a raw image holding an ISO 9660 filesystem. */
export const FormatByExtension: Readonly<Record<string, ImageFormat>> = {
  '.qcow2': 'qcow2',
  '.qcow': 'qcow2',
  '.raw': 'raw',
  '.img': 'raw',
  '.iso': 'raw',
  '.vmdk': 'vmdk',
  '.vdi': 'vdi',
};

export interface FormatChoiceOptions {
  /** The value of the command's format option, when given. */
  readonly explicit?: string | undefined;
  /** How the command spells that option, for messages: `--format`, `-f`, `-F`. */
  readonly flag?: string;
  /** The formats the command can open (default: every native reader). */
  readonly accepts?: readonly ImageFormat[];
}

export interface FormatChoice {
  readonly format: ImageFormat;
  /** Where the answer came from. */
  readonly from: 'option' | 'extension';
  /** The name ends in `.iso`: read the whole image as ISO 9660, whatever partition table it also carries. */
  readonly iso: boolean;
}

function extensionsOf(accepts: readonly ImageFormat[]): string[] {
  return Object.entries(FormatByExtension).filter(([, f]) => accepts.includes(f)).map(([ext]) => ext);
}

/**
 * `explicit` if given, else the format `path`'s extension states.
 * @throws VirtkitError('argument.invalid') when the option names a format the command cannot
 *         open, or when neither the option nor the name says; the message names both ways.
 */
export function chooseImageFormat(path: string, options: FormatChoiceOptions = {}): FormatChoice {
  const flag = options.flag ?? '--format';
  const accepts = options.accepts ?? ImageFormats;
  const ext = extname(path).toLowerCase();
  if (options.explicit !== undefined) {
    const format = options.explicit.toLowerCase();
    if (!(accepts as readonly string[]).includes(format)) {
      throw new VirtkitError('argument.invalid', `${flag} must be one of ${accepts.join(', ')}, got '${options.explicit}'`,
        { option: flag, value: options.explicit, accepted: [...accepts] });
    }
    return { format: format as ImageFormat, from: 'option', iso: ext === '.iso' && format === 'raw' };
  }
  const stated = FormatByExtension[ext];
  if (stated !== undefined && accepts.includes(stated)) return { format: stated, from: 'extension', iso: ext === '.iso' };
  const names = extensionsOf(accepts).join(', ');
  const hint = `pass ${flag} ${accepts.join('|')}, or give the file a name that states its format (${names})`;
  throw new VirtkitError('argument.invalid',
    `cannot tell the format of '${path}': ${hint}; formats are never guessed from the content`,
    { option: flag, path, hint });
}
