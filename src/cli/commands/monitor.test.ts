import { describe, expect, it } from 'vitest';
import { isVirtkitError } from '../../util/errors.js';
import { parseQmpCommand } from './monitor.js';

describe('parseQmpCommand', () => {
  it('accepts {"execute": ...} with optional object arguments', () => {
    expect(parseQmpCommand('{"execute":"query-status"}')).toEqual({ qmp: { execute: 'query-status' } });
    expect(parseQmpCommand('{"execute":"x","arguments":{"a":1}}')).toEqual({ qmp: { execute: 'x', arguments: { a: 1 } } });
  });

  it('refuses anything else with argument.invalid (random inputs included)', () => {
    const bad = ['', 'query-status', '[]', 'null', '{"execute":1}', '{"execute":"x","arguments":[1]}', '{"execute":"x","arguments":null}', '{'];
    let seed = 5;
    for (let i = 0; i < 2000; i++) {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      bad.push(String.fromCharCode(...Array.from({ length: seed % 12 }, (_, k) => 32 + ((seed >> k) % 95))));
    }
    for (const text of bad) {
      let ok = false;
      try {
        const r = parseQmpCommand(text);
        ok = 'qmp' in r && typeof r.qmp.execute === 'string';
      } catch (err) {
        expect(isVirtkitError(err, 'argument.invalid')).toBe(true);
      }
      if (ok) expect(text.trim().startsWith('{')).toBe(true);
    }
  });
});
