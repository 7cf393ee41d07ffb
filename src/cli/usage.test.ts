/**
 * How the CLI answers bad input, in-process: numeric options, unknown verbs, missing
 * definition files. None of these reach a daemon: every case fails before connecting.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, test, vi } from 'vitest';
import { ExitCodes } from './exit-codes.js';
import { runCli as run } from '../../test/helpers/run-cli.js';
import { parseTimeoutSeconds, parseWholeNumber } from './options.js';
import { editDistance, nearestWord } from './suggest.js';

const dir = mkdtempSync(join(tmpdir(), 'virtkit-usage-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());

describe('numeric options', () => {
  const nowhere = join(dir, 'no.sock');
  test.each([
    [['shutdown', 'x', '--timeout', 'abc', '-c', nowhere], '--timeout'],
    [['shutdown', 'x', '--timeout', '-5', '-c', nowhere], '--timeout'],
    [['shutdown', 'x', '--timeout=1e9', '-c', nowhere], '--timeout'],
    [['event', '--timeout', 'abc', '-c', nowhere], '--timeout'],
    [['event', '--timeout', '', '-c', nowhere], '--timeout'],
    [['host-shutdown', '--timeout', 'soon', '-c', nowhere], '--timeout'],
    [['host-shutdown', '--timeout', '-1', '-c', nowhere], '--timeout'],
    [['run', join(dir, 'g.yaml'), '--until-ready', '--timeout', 'soon'], '--timeout'],
    [['run', join(dir, 'g.yaml'), '--until-ready', '--timeout', '-1'], '--timeout'],
    [['event', '--since', 'x1', '-c', nowhere], '--since'],
    [['event', '--since', '-3', '-c', nowhere], '--since'],
    [['nbd', join(dir, 'a.raw'), '-f', 'raw', '--port', '99999'], '--port'],
    [['nbd', join(dir, 'a.raw'), '-f', 'raw', '--port', 'http'], '--port'],
    [['nbd', join(dir, 'a.raw'), '-f', 'raw', '--shared', '0'], '--shared'],
    [['fs', 'ls', 'guest', '/', '--disk', 'first'], '--disk'],
    [['inspect', 'guest', '--disk', '-1'], '--disk'],
    [['bootinfo', 'guest', '--disk', '1.5'], '--disk'],
  ])('%j is argument.invalid naming %s, exit 5', async (args, option) => {
    const r = await run(args);
    expect(r.stderr).not.toContain('internal error');
    expect(r.stderr).toContain('argument.invalid');
    expect(r.stderr).toContain(option);
    expect(r.code).toBe(ExitCodes.invalidInput);
  });

  test('every timeout option says its unit and bounds in the help', async () => {
    for (const verb of ['shutdown', 'event', 'host-shutdown', 'run']) {
      const r = await run([verb, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout.replace(/\s+/g, ' '), verb).toMatch(/--timeout <seconds> .*?\(seconds, 0 to 86400\)/);
    }
  });

  test('the parsers accept what they promise', () => {
    expect(parseTimeoutSeconds('--timeout', '0')).toBe(0);
    expect(parseTimeoutSeconds('--timeout', '1.5')).toBe(1.5);
    expect(parseTimeoutSeconds('--timeout', '86400')).toBe(86_400);
    for (const bad of ['', ' ', 'abc', '-5', '86401', '1e3', '0x10', 'Infinity', 'NaN', '1.']) {
      expect(() => parseTimeoutSeconds('--timeout', bad), bad).toThrow(/--timeout: must be a number of seconds/);
    }
    expect(parseWholeNumber('--port', '0', { min: 0, max: 65_535 })).toBe(0);
    expect(() => parseWholeNumber('--port', '65536', { min: 0, max: 65_535 })).toThrow(/--port/);
  });
});

describe('unknown verbs', () => {
  test('one line with the nearest verb, exit 2', async () => {
    const r = await run(['strat', 'demo']);
    expect(r.code).toBe(ExitCodes.usage);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('virtkit: unknown command "strat". Did you mean "start"? See "virtkit --help".\n');
  });

  test('no suggestion when nothing is close', async () => {
    const r = await run(['xyzzyplugh']);
    expect(r.code).toBe(ExitCodes.usage);
    expect(r.stderr).toBe('virtkit: unknown command "xyzzyplugh". See "virtkit --help".\n');
  });

  test('a known verb with a bad option still gets its own usage error, exit 2', async () => {
    const r = await run(['list', '--bogus']);
    expect(r.code).toBe(ExitCodes.usage);
    expect(r.stderr).toContain('--bogus');
  });
});

describe('definition files', () => {
  const missing = join(dir, 'missing.yaml');
  test.each([
    [['define', missing, '-c', join(dir, 'no.sock')]],
    [['argv', missing]],
  ])('%j is definition.not-found, exit 3', async (args) => {
    const r = await run(args);
    expect(r.stderr).toContain('definition.not-found');
    expect(r.code).toBe(ExitCodes.notFound);
  });
});

describe('nearestWord', () => {
  test('counts a swap of neighbours as one edit, and gives up when too far', () => {
    expect(editDistance('strat', 'start')).toBe(1);
    expect(editDistance('', 'abc')).toBe(3);
    expect(nearestWord('dominf', ['dominfo', 'domstate'])).toBe('dominfo');
    expect(nearestWord('shutdwon', ['shutdown', 'host-shutdown'])).toBe('shutdown');
    expect(nearestWord('ls', ['list', 'fs'])).toBe('fs');
    expect(nearestWord('zz', ['list', 'fs'])).toBeUndefined();
  });
});
