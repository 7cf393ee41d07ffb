/**
 * What XML 1.0 can carry. Its `Char` production leaves out the C0 controls other than tab,
 * newline and carriage return, the surrogates and U+FFFE/U+FFFF; no character reference can
 * stand for them either (`&#x1b;` is not well-formed), so a value holding one has no XML form.
 */

/** A character XML 1.0 allows. */
export function isXmlChar(code: number): boolean {
  return code === 0x9 || code === 0xa || code === 0xd || (code >= 0x20 && code <= 0xd7ff)
    || (code >= 0xe000 && code <= 0xfffd) || (code >= 0x10000 && code <= 0x10ffff);
}

/** The offset (in UTF-16 units) of the first character XML cannot carry, or -1. */
export function firstNonXmlChar(text: string): number {
  for (let i = 0; i < text.length; i += 1) {
    const code = text.codePointAt(i) ?? 0;
    if (!isXmlChar(code)) return i;
    if (code > 0xffff) i += 1;
  }
  return -1;
}

/** `U+001B`, as a message names a character. */
export function codePointName(code: number): string {
  return `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
}
