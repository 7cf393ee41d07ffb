import { describe, expect, it } from 'vitest';
import { escapeForTerminal } from './terminal-text.js';

describe('escapeForTerminal', () => {
  it('shows escape sequences instead of sending them', () => {
    expect(escapeForTerminal('\x1b]52;c;cHduZWQ=\x07title')).toBe('\\e]52;c;cHduZWQ=\\x07title');
    expect(escapeForTerminal('a\x1b[2Jb\x9bc\x7f')).toBe('a\\e[2Jb\\x9bc\\x7f');
  });

  it('keeps tabs; keeps newlines (CRLF as one) only when asked', () => {
    expect(escapeForTerminal('a\tb\nc')).toBe('a\tb\\nc');
    expect(escapeForTerminal('ready\r\n# \x1b[6n\r', { keepNewlines: true })).toBe('ready\n# \\e[6n\\r');
  });

  it('leaves every other character alone, and never lets a control through (10,000 random strings)', () => {
    expect(escapeForTerminal('é ü 日本 🙂')).toBe('é ü 日本 🙂');
    for (let i = 0; i < 10_000; i++) {
      const s = String.fromCharCode(...Array.from({ length: 16 }, () => Math.floor(Math.random() * 0xa0)));
      expect(escapeForTerminal(s)).not.toMatch(/[\x00-\x08\x0a-\x1f\x7f-\x9f]/);
      expect(escapeForTerminal(s, { keepNewlines: true })).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/);
    }
  });
});
