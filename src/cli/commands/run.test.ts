import { describe, expect, it } from 'vitest';
import { policyMessage, splitConsoleInput } from './run.js';

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

describe('policyMessage', () => {
  it('says what the lifecycle policy did, naming the setting', () => {
    expect(policyMessage({ type: 'policy', what: 'poweroff', action: 'restart' })).toBe('guest powered off; restarting it (on_poweroff: restart)');
    expect(policyMessage({ type: 'policy', what: 'reboot', action: 'preserve' }))
      .toBe('guest rebooted; kept stopped (on_reboot: preserve); Ctrl-] or a signal ends it');
    expect(policyMessage({ type: 'policy', what: 'crash', action: 'restart' })).toBe('guest panicked; restarting it (on_crash: restart)');
  });

  it('says nothing for destroy (the exit says it) or other events', () => {
    expect(policyMessage({ type: 'policy', what: 'poweroff', action: 'destroy' })).toBeUndefined();
    expect(policyMessage({ type: 'reset', by: 'guest' })).toBeUndefined();
  });
});
