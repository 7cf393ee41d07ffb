/**
 * `virtkit img` end to end through the built CLI, cross-checked against qemu-img itself:
 * native info and map against `qemu-img info/map --output=json`, convert's JSON progress,
 * qemu-img's errors reaching the user verbatim, check, resize and compare.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { qemuImg, qemuIo, tempDir } from './image-qemu.js';

const CLI = resolve(import.meta.dirname, '../../bin/virtkit.js');
const { dir, cleanup } = tempDir('image-cli');
afterAll(cleanup);

function virtkit(...args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, 'img', ...args], { encoding: 'utf8', cwd: dir });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

const QCOW2_FIELDS = ['compat', 'compression-type', 'lazy-refcounts', 'refcount-bits', 'corrupt', 'extended-l2'] as const;

/** The fields both tools report, from one layer of `info --output=json`. */
function comparable(info: Record<string, unknown>): Record<string, unknown> {
  const specific = (info['format-specific'] as { data: Record<string, unknown> } | undefined)?.data;
  const out: Record<string, unknown> = {};
  for (const k of ['filename', 'format', 'virtual-size', 'actual-size', 'cluster-size', 'dirty-flag', 'backing-filename',
    'full-backing-filename', 'backing-filename-format']) out[k] = info[k];
  if (specific !== undefined) for (const k of QCOW2_FIELDS) out[k] = specific[k];
  return out;
}

describe('img info (native) agrees with qemu-img info', () => {
  const cases: [string, string[]][] = [
    ['v2.qcow2', ['-o', 'compat=0.10,cluster_size=4k']],
    ['v3-lazy.qcow2', ['-o', 'lazy_refcounts=on,refcount_bits=64,cluster_size=2M']],
    ['el2.qcow2', ['-o', 'extended_l2=on,cluster_size=128k']],
    ['zstd.qcow2', ['-o', 'compression_type=zstd']],
    ['plain.raw', ['-f', 'raw']],
  ];
  for (const [name, opts] of cases) {
    it(name, () => {
      const f = join(dir, name);
      qemuImg('create', ...(opts.includes('-f') ? [] : ['-f', 'qcow2']), ...opts, f, '3M');
      qemuIo(f, name.endsWith('.raw') ? 'raw' : 'qcow2', 'write -P 0x61 0 300k');
      const ours = JSON.parse(virtkit('info', '--json', f).stdout) as Record<string, unknown>;
      const theirs = JSON.parse(qemuImg('info', '--output=json', '-f', name.endsWith('.raw') ? 'raw' : 'qcow2', f)) as Record<string, unknown>;
      expect(comparable(ours)).toEqual(comparable(theirs));
    });
  }

  it('--backing-chain, three layers, relative backing names', () => {
    qemuImg('create', '-f', 'raw', join(dir, 'c0.raw'), '2M');
    qemuImg('create', '-f', 'qcow2', '-b', 'c0.raw', '-F', 'raw', join(dir, 'c1.qcow2'));
    qemuImg('create', '-f', 'qcow2', '-b', join(dir, 'c1.qcow2'), '-F', 'qcow2', join(dir, 'c2.qcow2'), '4M');
    const f = join(dir, 'c2.qcow2');
    const ours = JSON.parse(virtkit('info', '--json', '--backing-chain', f).stdout) as Record<string, unknown>[];
    const theirs = JSON.parse(qemuImg('info', '--output=json', '--backing-chain', '-f', 'qcow2', f)) as Record<string, unknown>[];
    expect(ours.length).toBe(3);
    expect(ours.map(comparable)).toEqual(theirs.map(comparable));
    const human = virtkit('info', '--backing-chain', f).stdout;
    expect(human).toContain('backing file format: raw');
    expect(human).toContain('virtual size: 4 MiB (4194304 bytes)');
  });

  it('describes one layer even when its backing file is missing; --backing-chain then fails', () => {
    const f = join(dir, 'orphan.qcow2');
    qemuImg('create', '-f', 'qcow2', '-u', '-b', 'gone.qcow2', '-F', 'qcow2', f, '1M');
    const ours = JSON.parse(virtkit('info', '--json', f).stdout) as Record<string, unknown>;
    const theirs = JSON.parse(qemuImg('info', '--output=json', '-f', 'qcow2', f)) as Record<string, unknown>;
    expect(comparable(ours)).toEqual(comparable(theirs));
    const chain = virtkit('info', '--backing-chain', f);
    expect(chain.status).toBe(3);
    expect(chain.stderr).toContain('image.not-found');
  });

  it('needs a format it can trust: -f or a name that states it', () => {
    writeFileSync(join(dir, 'disk'), Buffer.alloc(4096));
    const r = virtkit('info', join(dir, 'disk'));
    expect(r.status).toBe(5);
    expect(r.stderr).toContain('argument.invalid');
    expect(virtkit('info', '-f', 'raw', join(dir, 'disk')).status).toBe(0);
    writeFileSync(join(dir, 'disk.img'), Buffer.alloc(4096));
    expect(virtkit('info', join(dir, 'disk.img')).status).toBe(0);
  });
});

describe('img map (native) agrees with qemu-img map', () => {
  it('data, zero clusters and backing layers', () => {
    const base = join(dir, 'm-base.qcow2');
    const top = join(dir, 'm-top.qcow2');
    qemuImg('create', '-f', 'qcow2', base, '4M');
    qemuIo(base, 'qcow2', 'write -P 0x11 0 1M', 'write -P 0x12 3M 64k');
    qemuImg('create', '-f', 'qcow2', '-b', base, '-F', 'qcow2', top);
    qemuIo(top, 'qcow2', 'write -P 0x21 512k 128k', 'write -z 2M 256k');
    type Row = { start: number; length: number; depth: number; present: boolean; zero: boolean; data: boolean };
    /** Per 64 KiB cluster, the flags: the two tools merge runs differently, the flags per byte must agree. */
    const perCluster = (rows: Row[]): string[] => rows.flatMap((r) =>
      Array.from({ length: r.length / 65536 }, () => `${r.depth}/${r.present}/${r.zero}/${r.data}`));
    const ours = JSON.parse(virtkit('map', '--json', top).stdout) as Row[];
    const theirs = JSON.parse(qemuImg('map', '--output=json', '-f', 'qcow2', top)) as Row[];
    expect(perCluster(ours)).toEqual(perCluster(theirs));
    expect(virtkit('map', top).stdout).toMatch(/^Offset\s+Length\s+Depth/);
  });
});

describe('img create, convert, check, resize, compare', () => {
  it('create with a backing file, convert with JSON progress, compare', () => {
    const base = join(dir, 'cc-base.qcow2');
    const top = join(dir, 'cc-top.qcow2');
    expect(virtkit('create', '-f', 'qcow2', base, '8M').status).toBe(0);
    qemuIo(base, 'qcow2', 'write -P 0x31 0 8M');
    expect(virtkit('create', '-f', 'qcow2', '-b', base, top).stderr).toContain('-F');
    expect(virtkit('create', '-f', 'qcow2', '-b', base, '-F', 'qcow2', top).status).toBe(0);
    qemuIo(top, 'qcow2', 'write -P 0x32 1M 1M');

    const out = join(dir, 'cc.raw');
    const r = virtkit('convert', '--json', '-O', 'raw', top, out);
    expect(r.status).toBe(0);
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { event: string; done?: number; total: number });
    const progress = events.filter((e) => e.event === 'progress');
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.every((e) => e.total === 8 * 1024 * 1024)).toBe(true);
    expect(progress.map((e) => e.done!)).toEqual([...progress.map((e) => e.done!)].sort((a, b) => a - b));
    expect(progress.at(-1)!.done).toBe(8 * 1024 * 1024);
    expect(events.at(-1)!.event).toBe('done');
    const raw = readFileSync(out);
    expect(raw.subarray(1024 * 1024, 2 * 1024 * 1024).every((b) => b === 0x32)).toBe(true);
    expect(raw[0]).toBe(0x31);

    expect(virtkit('compare', top, '-F', 'raw', out).status).toBe(0);
    qemuIo(out, 'raw', 'write -P 0x00 5M 1');
    const diff = virtkit('compare', top, '-F', 'raw', out);
    expect(diff.status).toBe(1);
    expect(diff.stdout).toContain('Content mismatch at offset 5242880');
  });

  it('qemu-img\'s errors reach the user verbatim', () => {
    const src = join(dir, 'e.qcow2');
    qemuImg('create', '-f', 'qcow2', src, '1M');
    const r = virtkit('convert', '-O', 'qcow2', '-o', 'cluster_size=3k', src, join(dir, 'e2.qcow2'));
    expect(r.status).toBe(6);
    expect(r.stderr).toContain('qemu-img.failed');
    expect(r.stderr).toMatch(/[Cc]luster size must be a power of two/);
  });

  it('check: clean, then a cluster whose refcount is zero', () => {
    const f = join(dir, 'chk.qcow2');
    qemuImg('create', '-f', 'qcow2', f, '1M');
    qemuIo(f, 'qcow2', 'write -P 0x41 0 64k');
    const clean = virtkit('check', f);
    expect(clean.stdout, clean.stderr).toContain('no errors');
    const bytes = readFileSync(f);
    const l1 = Number(bytes.readBigUInt64BE(40));
    const l2 = Number(bytes.readBigUInt64BE(l1) & 0x00fffffffffffe00n);
    const data = Number(bytes.readBigUInt64BE(l2) & 0x00fffffffffffe00n);
    const refTable = Number(bytes.readBigUInt64BE(48));
    const block = Number(bytes.readBigUInt64BE(refTable));
    bytes.writeUInt16BE(0, block + (data / 65536) * 2);
    writeFileSync(f, bytes);
    const r = virtkit('check', f);
    expect(r.status).toBe(8);
    expect(r.stderr).toContain('image.corrupt');
    const json = virtkit('check', '--json', f);
    expect((JSON.parse(json.stdout) as { corruptions: number }).corruptions).toBeGreaterThan(0);
  });

  it('resize grows, and shrinks only with --shrink', () => {
    const f = join(dir, 'rs.qcow2');
    qemuImg('create', '-f', 'qcow2', f, '1M');
    expect(virtkit('resize', f, '+1M').status).toBe(0);
    const size = (): number => (JSON.parse(virtkit('info', '--json', f).stdout) as { 'virtual-size': number })['virtual-size'];
    expect(size()).toBe(2 * 1024 * 1024);
    const refused = virtkit('resize', f, '512K');
    expect(refused.status).toBe(5);
    expect(size()).toBe(2 * 1024 * 1024);
    expect(virtkit('resize', '--shrink', f, '512K').status).toBe(0);
    expect(size()).toBe(512 * 1024);
  });
});
