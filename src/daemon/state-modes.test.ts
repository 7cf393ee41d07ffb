/**
 * The modes the daemon gives its state dir: corrected at start for a dir an older version
 * left open, files created private afterwards. (The whole story with a real daemon and real
 * users is test/integration/faults-access.test.ts.)
 */
import { chmodSync, chownSync, lstatSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { correctStateDirModes, createPrivately, openPrivateFile } from './state-modes.js';

const modeOf = (path: string): number => lstatSync(path).mode & 0o7777;

describe('state dir modes', () => {
  let dir: string;
  let state: string;
  let run: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'vk-modes-'));
    state = join(dir, 'state');
    run = join(dir, 'run');
    mkdirSync(state, { mode: 0o755 });
    mkdirSync(run, { mode: 0o755 });
  });
  afterEach(() => { rmSync(dir, { recursive: true, force: true }); });

  it('makes the state dir 0700, its files 0600 and its directories 0700; a run dir parent outside keeps its mode', () => {
    writeFileSync(join(state, 'store.db'), '', { mode: 0o644 });
    writeFileSync(join(state, 'daemon.log'), '', { mode: 0o666 });
    mkdirSync(join(state, 'cache'), { mode: 0o755 });
    writeFileSync(join(state, 'cache', 'inside'), '', { mode: 0o644 });
    mkdirSync(join(run, 'some-uuid'), { mode: 0o755 });
    writeFileSync(join(run, 'kvm-verdict.json'), '', { mode: 0o644 });
    const outside = join(dir, 'outside');
    writeFileSync(outside, '', { mode: 0o644 });
    symlinkSync(outside, join(state, 'link'));
    correctStateDirModes({ stateDir: state, runDir: run });
    expect(modeOf(state)).toBe(0o700);
    expect(modeOf(join(state, 'store.db'))).toBe(0o600);
    expect(modeOf(join(state, 'daemon.log'))).toBe(0o600);
    expect(modeOf(join(state, 'cache'))).toBe(0o700);
    // Below a 0700 directory: out of reach whatever its mode.
    expect(modeOf(join(state, 'cache', 'inside'))).toBe(0o644);
    expect(modeOf(join(run, 'some-uuid'))).toBe(0o700);
    expect(modeOf(run)).toBe(0o755);
    expect(modeOf(join(run, 'kvm-verdict.json'))).toBe(0o644);
    // A symlink is not followed.
    expect(modeOf(outside)).toBe(0o644);
  });

  it('makes the state dir 0750 and group-owned with a socket group, and leaves a socket in it alone', async () => {
    const sock = join(state, 'virtkit.sock');
    const server = await new Promise<Server>((resolve) => { const s = createServer(); s.listen(sock, () => resolve(s)); });
    try {
      chmodSync(sock, 0o660);
      // Root can give the dir any group; another user only one of its own.
      const gid = process.getuid?.() === 0 ? 100 : process.getgid!();
      correctStateDirModes({ stateDir: state, runDir: run, socketGid: gid });
      expect(modeOf(state)).toBe(0o750);
      expect(lstatSync(state).gid).toBe(gid);
      expect(modeOf(sock)).toBe(0o660);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it('refuses a state dir that is shared (sticky) or not the daemon\'s own, changing nothing', () => {
    chmodSync(state, 0o1777);
    writeFileSync(join(state, 'someone-elses'), '', { mode: 0o644 });
    expect(() => correctStateDirModes({ stateDir: state, runDir: run })).toThrow(/shared directory/);
    expect(modeOf(state)).toBe(0o1777);
    expect(modeOf(join(state, 'someone-elses'))).toBe(0o644);
    if (process.getuid?.() === 0) {
      chmodSync(state, 0o755);
      chownSync(state, 65534, 65534);
      expect(() => correctStateDirModes({ stateDir: state, runDir: run })).toThrow(expect.objectContaining({ code: 'argument.invalid' }) as Error);
      expect(modeOf(join(state, 'someone-elses'))).toBe(0o644);
    }
  });

  it('creates SQLite\'s database, WAL and shared-memory files 0600 under createPrivately', () => {
    const file = join(state, 'store.db');
    const db = createPrivately(() => {
      const d = new Database(file);
      d.pragma('journal_mode = WAL');
      d.exec('CREATE TABLE t (x)');
      return d;
    });
    try {
      for (const name of ['store.db', 'store.db-wal', 'store.db-shm']) expect(modeOf(join(state, name)), name).toBe(0o600);
      // The umask is back: what is created afterwards is not forced private.
      writeFileSync(join(state, 'after'), '', { mode: 0o640 });
      expect(modeOf(join(state, 'after')) & 0o040).toBe(0o040);
    } finally {
      db.close();
    }
  });

  it('creates a log file 0600, and makes an existing one 0600', () => {
    const fresh = join(state, 'fresh.log');
    openPrivateFile(fresh);
    expect(modeOf(fresh)).toBe(0o600);
    const old = join(state, 'old.log');
    writeFileSync(old, 'kept\n', { mode: 0o644 });
    openPrivateFile(old);
    expect(modeOf(old)).toBe(0o600);
  });
});
