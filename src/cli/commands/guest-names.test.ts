import { describe, expect, it } from 'vitest';
import { decodeName } from '../../guestfs/index.js';
import { quoteName, quotePath } from './guest-names.js';

describe('guest names on a terminal', () => {
  it('prints plain names as they are and quotes the others as $\'…\', as ls does', () => {
    expect(quoteName('motd')).toBe('motd');
    expect(quoteName('with space')).toBe('with space');
    expect(quoteName('café')).toBe('café');
    expect(quoteName('evil\x1b]0;owned\x07.txt')).toBe("$'evil\\e]0;owned\\x07.txt'");
    expect(quoteName('two\nlines')).toBe("$'two\\nlines'");
    expect(quoteName("it's\t\\\x9b")).toBe("$'it\\'s\\t\\\\\\xc2\\x9b'");
    expect(quoteName(decodeName(Uint8Array.of(0x63, 0x61, 0x66, 0xff)))).toBe("$'caf\\xff'");
    expect(quoteName('a/b')).toBe("$'a\\x2fb'");
  });

  it('quotes a path as a whole, a "/" inside a name escaped and the separators kept', () => {
    expect(quotePath(['etc', 'hostname'], true)).toBe('/etc/hostname');
    expect(quotePath(['dir', 'a/b', 'x\x1b'], false)).toBe("$'dir/a\\x2fb/x\\e'");
  });

  it('never lets a control character through, whatever the name', () => {
    const codes = [...Array.from({ length: 0x800 }, (_, i) => i), ...Array.from({ length: 0x800 }, (_, i) => 0xd800 + i)];
    for (const c of codes) {
      const shown = quoteName(`a${String.fromCharCode(c)}b`);
      expect(shown).not.toMatch(/[\x00-\x1f\x7f-\x9f]/);
    }
  });
});
