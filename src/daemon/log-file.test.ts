import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { LogFile } from './log-file.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('the daemon log file', () => {
  it('appends one line per record, mode 0600', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vk-log-'));
    dirs.push(dir);
    const file = new LogFile(join(dir, 'daemon.log'));
    const log = pino(file);
    log.info({ a: 1 }, 'first');
    log.warn('second');
    const lines = readFileSync(file.path, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { msg: string });
    expect(lines.map((l) => l.msg)).toEqual(['first', 'second']);
    expect(statSync(file.path).mode & 0o777).toBe(0o600);
    file.destroy();
  });

  it('drops the lines a full disk refuses (/dev/full answers ENOSPC) and neither throws nor blocks', () => {
    const file = new LogFile('/dev/full');
    const log = pino(file);
    for (let i = 0; i < 100; i++) log.info({ i }, 'a line the disk has no room for');
    expect(file.droppedLines).toBe(100);
    file.destroy();
  });
});
