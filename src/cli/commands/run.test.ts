import { describe, expect, it } from 'vitest';
import { splitConsoleInput } from './run.js';

describe('splitConsoleInput', () => {
  it('passes terminal input through until Ctrl-]', () => {
    expect(splitConsoleInput(Buffer.from('ls\r'), true)).toEqual({ forward: Buffer.from('ls\r'), escape: false });
    expect(splitConsoleInput(Buffer.from('ab\x1dcd'), true)).toEqual({ forward: Buffer.from('ab'), escape: true });
    expect(splitConsoleInput(Buffer.from('\x1d'), true)).toEqual({ forward: Buffer.alloc(0), escape: true });
  });

  it('leaves piped input alone, Ctrl-] included', () => {
    expect(splitConsoleInput(Buffer.from('ab\x1dcd'), false)).toEqual({ forward: Buffer.from('ab\x1dcd'), escape: false });
  });
});
