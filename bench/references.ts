/**
 * The references the daemon and start-up benches measure in the same run: libvirt through
 * its Python binding (when installed; the bench installs nothing), the SQLite commit floor on
 * the state dir's filesystem, Node's own start-up time and idle RSS.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { median } from './stats.js';

const script = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', 'libvirt-rates.py');

export interface LibvirtFigures {
  uri: string;
  version: number;
  domains: number;
  /** dom.info() calls/s, one connection. */
  info: number;
  /** listAllDomains() calls/s, one connection. */
  list: number;
  /** define + undefine x100, one after the other, ms. */
  defineUndefine100Ms: number;
  /** libvirtd's RSS after the run, MiB, when one process answers to the name. */
  rssMiB?: number;
}

/**
 * libvirt's figures, or undefined when its Python binding or a daemon is missing. Tries
 * qemu:///system first, then the in-process test:///default driver (no RPC: not comparable
 * for call rates, so the caller says which URI answered).
 */
export function measureLibvirt(domains: number): LibvirtFigures | undefined {
  for (const python of ['/usr/bin/python3', 'python3']) {
    const r = spawnSync(python, [script, process.env['VIRTKIT_BENCH_LIBVIRT_URI'] ?? '', String(domains), '2'], { encoding: 'utf8' });
    if (r.status !== 0) continue;
    const figures = JSON.parse(r.stdout) as LibvirtFigures;
    const ps = spawnSync('ps', ['-C', 'libvirtd', '-o', 'rss='], { encoding: 'utf8' });
    const kb = ps.stdout.trim().split('\n').map(Number).filter((n) => n > 0);
    if (kb.length === 1) figures.rssMiB = kb[0]! / 1024;
    return figures;
  }
  return undefined;
}

/** The time of `commits` SQLite commits (one small row each), WAL with synchronous=FULL, in `dir`. */
export function sqliteCommitFloorMs(dir: string, commits: number): number {
  const db = new Database(join(dir, 'floor.db'));
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.exec('CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT)');
    const put = db.prepare('INSERT OR REPLACE INTO t (k, v) VALUES (?, ?)');
    const one = db.transaction((k: string) => put.run(k, 'x'.repeat(200)));
    for (let i = 0; i < 20; i++) one.immediate(`warm${i}`);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < commits; i++) one.immediate(`k${i % 100}`);
    return Number(process.hrtime.bigint() - t0) / 1e6;
  } finally {
    db.close();
  }
}

/** Median whole-process wall time of `argv`, in ms. */
export function processMs(argv: readonly string[], runs: number, env: NodeJS.ProcessEnv = process.env): number {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    const r = spawnSync(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env });
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    if (r.status !== 0) throw new Error(`${argv.join(' ')} failed: ${r.stderr.toString()}`);
  }
  return median(times);
}

export async function rssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

/** Node's own idle RSS on this machine: a process that only waits, measured after it settled. */
export async function nodeIdleRssMiB(): Promise<number> {
  const p = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1e9)'], { stdio: 'ignore' });
  try {
    await sleep(700);
    return await rssMiB(p.pid!);
  } finally {
    p.kill('SIGKILL');
  }
}
