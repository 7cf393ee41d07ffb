import { describe, expect, it } from 'vitest';
import { isVirtkitError } from '../util/errors.js';
import { Methods, type MethodName } from './methods.js';
import { allowedStates, assertStateAllowed, isStatefulMethod } from './preconditions.js';
import { DomainStates } from './schemas.js';

function refusal(fn: () => void): { message: string; data: Record<string, unknown> } {
  try {
    fn();
  } catch (err) {
    if (isVirtkitError(err, 'domain.invalid-state')) return { message: err.message, data: err.data };
    throw err;
  }
  throw new Error('expected domain.invalid-state');
}

describe('assertStateAllowed', () => {
  it('names the domain, its state and the allowed ones', () => {
    const r = refusal(() => assertStateAllowed('domain.suspend', 'web', 'shutoff'));
    expect(r.message).toBe('cannot suspend "web": it is shut off (allowed: running)');
    expect(r.data).toEqual({ name: 'web', method: 'domain.suspend', state: 'shutoff', allowed: ['running'] });
    expect(refusal(() => assertStateAllowed('domain.start', 'db', 'paused')).message)
      .toBe('cannot start "db": it is paused (allowed: shutoff, crashed)');
    expect(refusal(() => assertStateAllowed('domain.shutdown', 'db', 'crashed')).message)
      .toBe('cannot shut down "db": it is crashed (allowed: running, paused)');
  });

  it('passes the states the method accepts', () => {
    expect(() => assertStateAllowed('domain.suspend', 'web', 'running')).not.toThrow();
    expect(() => assertStateAllowed('domain.resume', 'web', 'paused')).not.toThrow();
    expect(() => assertStateAllowed('domain.start', 'web', 'crashed')).not.toThrow();
    expect(() => assertStateAllowed('domain.monitorCommand', 'web', 'paused')).not.toThrow();
  });

  it('widens undefine to every state with force only', () => {
    expect(refusal(() => assertStateAllowed('domain.undefine', 'web', 'running')).data.allowed).toEqual(['shutoff', 'crashed']);
    expect(() => assertStateAllowed('domain.undefine', 'web', 'running', { force: true })).not.toThrow();
    expect(allowedStates('domain.undefine', { force: true })).toEqual(expect.arrayContaining([...DomainStates]));
    // force means nothing to a method without forceStates
    expect(() => assertStateAllowed('domain.resume', 'web', 'running', { force: true })).toThrow(/allowed: paused/);
  });

  it('decides every stateful method for every state, as the table says', () => {
    for (const method of Object.keys(Methods) as MethodName[]) {
      if (!isStatefulMethod(method)) continue;
      for (const state of DomainStates) {
        const accepted = (Methods[method].states as readonly string[]).includes(state);
        const check = (): void => assertStateAllowed(method, 'x', state);
        if (accepted) expect(check, `${method} in ${state}`).not.toThrow();
        else expect(check, `${method} in ${state}`).toThrow(/^cannot .+ "x": it is /);
      }
    }
  });
});
