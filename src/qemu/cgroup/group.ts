/**
 * One guest's cgroup: `<parent>/<domain-uuid>` in each hierarchy of the layout (layout.ts).
 * QEMU is moved in right after spawn, while it still waits under -S, so no guest instruction
 * runs outside it; the limits are the definition's cpu_shares, cpu_quota and memory_limit,
 * written in the files of the host's cgroup version. Removed when QEMU is gone (every exit
 * path of the driver) and by the daemon's reconciliation for guests no longer running.
 */
import { mkdir, readFile, readdir, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { VirtkitError, isVirtkitError } from '../../util/errors.js';
import { Controllers, type CgroupLayout, type Controller } from './layout.js';

/** The limits of a definition (absent: the host's default, unlimited). */
export interface ResourceLimits {
  cpu_shares?: number | undefined;
  cpu_quota?: number | undefined;
  memory_limit?: number | undefined;
}

/** CFS period: quotas are given in percent of one CPU over this period. */
export const CpuPeriodUs = 100_000;
const UuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** v1 cpu.shares -> v2 cpu.weight, the mapping systemd and libvirt use (2..262144 -> 1..10000). */
export function sharesToWeight(shares: number): number {
  return Math.min(10000, Math.max(1, Math.round(1 + ((shares - 2) * 9999) / 262142)));
}

export function weightToShares(weight: number): number {
  return Math.round(2 + ((weight - 1) * 262142) / 9999);
}

/** The files to write for some limits, per controller, in a cgroup version. */
export function limitFiles(version: 1 | 2, limits: ResourceLimits): { ctrl: Controller; file: string; value: string; field: keyof ResourceLimits }[] {
  const quota = limits.cpu_quota === undefined ? undefined : limits.cpu_quota * (CpuPeriodUs / 100);
  if (version === 1) {
    return [
      { ctrl: 'cpu', file: 'cpu.shares', value: String(limits.cpu_shares ?? 1024), field: 'cpu_shares' },
      { ctrl: 'cpu', file: 'cpu.cfs_period_us', value: String(CpuPeriodUs), field: 'cpu_quota' },
      { ctrl: 'cpu', file: 'cpu.cfs_quota_us', value: String(quota ?? -1), field: 'cpu_quota' },
      { ctrl: 'memory', file: 'memory.limit_in_bytes', value: String(limits.memory_limit ?? -1), field: 'memory_limit' },
    ];
  }
  return [
    { ctrl: 'cpu', file: 'cpu.weight', value: String(limits.cpu_shares === undefined ? 100 : sharesToWeight(limits.cpu_shares)), field: 'cpu_shares' },
    { ctrl: 'cpu', file: 'cpu.max', value: `${quota ?? 'max'} ${CpuPeriodUs}`, field: 'cpu_quota' },
    { ctrl: 'memory', file: 'memory.max', value: limits.memory_limit === undefined ? 'max' : String(limits.memory_limit), field: 'memory_limit' },
  ];
}

/** Limits read back from the files (what the kernel enforces). */
export function parseLimitFiles(version: 1 | 2, files: Record<string, string | undefined>): ResourceLimits {
  const num = (text: string | undefined): number | undefined => {
    const n = text === undefined ? NaN : Number(text.trim());
    return Number.isFinite(n) ? n : undefined;
  };
  const out: ResourceLimits = {};
  if (version === 1) {
    const shares = num(files['cpu.shares']);
    const quota = num(files['cpu.cfs_quota_us']);
    const period = num(files['cpu.cfs_period_us']) ?? CpuPeriodUs;
    const memory = num(files['memory.limit_in_bytes']);
    if (shares !== undefined && shares !== 1024) out.cpu_shares = shares;
    if (quota !== undefined && quota > 0) out.cpu_quota = Math.round((quota * 100) / period);
    // "no limit" reads as the largest page-aligned value, far beyond any memory
    if (memory !== undefined && memory > 0 && memory < 2 ** 62) out.memory_limit = memory;
    return out;
  }
  const weight = num(files['cpu.weight']);
  const [max, period] = (files['cpu.max'] ?? '').trim().split(/\s+/);
  const memory = files['memory.max']?.trim();
  if (weight !== undefined && weight !== 100) out.cpu_shares = weightToShares(weight);
  if (max !== undefined && max !== 'max' && num(max) !== undefined) out.cpu_quota = Math.round((num(max)! * 100) / (num(period) ?? CpuPeriodUs));
  if (memory !== undefined && memory !== 'max' && num(memory) !== undefined) out.memory_limit = num(memory)!;
  return out;
}

function unsupported(path: string, err: unknown, what: string): VirtkitError {
  const code = (err as NodeJS.ErrnoException).code ?? String(err);
  return new VirtkitError('operation.unsupported', `cgroups: cannot ${what} ${path} (${code}); resource limits need a writable cgroup hierarchy (docs/resource-limits.md)`,
    { path, errno: code });
}

export class GuestCgroup {
  private constructor(readonly layout: CgroupLayout, readonly uuid: string) {}

  /** The group of domain `uuid` (nothing is created). */
  static of(layout: CgroupLayout, uuid: string): GuestCgroup {
    if (!UuidPattern.test(uuid)) throw new VirtkitError('argument.invalid', `cgroup: ${JSON.stringify(uuid)} is not a domain uuid`);
    return new GuestCgroup(layout, uuid);
  }

  dir(ctrl: Controller): string {
    return join(this.layout.parents[ctrl], this.uuid);
  }

  /** The distinct directories of the group (one on v2, one per hierarchy on v1). */
  dirs(): string[] {
    return [...new Set(Controllers.map((c) => this.dir(c)))];
  }

  /** Creates the group in every hierarchy (v2: with the cpu and memory controllers enabled for it). */
  async create(): Promise<void> {
    if (this.layout.version === 2) await enableV2Controllers(this.layout.parents.cpu);
    for (const dir of this.dirs()) {
      await mkdir(dir, { recursive: true }).catch((err: unknown) => { throw unsupported(dir, err, 'create'); });
    }
  }

  /** Moves a process, all its threads, into the group. */
  async addProcess(pid: number): Promise<void> {
    for (const dir of this.dirs()) {
      const file = join(dir, 'cgroup.procs');
      await writeFile(file, `${pid}\n`).catch(async (err: unknown) => {
        // removed meanwhile (a reconciliation that found it empty): made again once
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw unsupported(file, err, 'write');
        await mkdir(dir, { recursive: true });
        await writeFile(file, `${pid}\n`);
      }).catch((err: unknown) => { throw isVirtkitError(err) ? err : unsupported(file, err, 'write'); });
    }
  }

  /** Writes the limits; an absent one is set back to the host's default (no limit). */
  async apply(limits: ResourceLimits): Promise<void> {
    for (const { ctrl, file, value, field } of limitFiles(this.layout.version, limits)) {
      const path = join(this.dir(ctrl), file);
      try {
        await writeFile(path, value);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EBUSY' && field === 'memory_limit') {
          throw new VirtkitError('argument.invalid', `memory_limit: ${value} bytes is below what the guest's QEMU uses now`, { field, value });
        }
        throw unsupported(path, err, 'write');
      }
    }
  }

  async read(): Promise<ResourceLimits> {
    const files: Record<string, string | undefined> = {};
    for (const { ctrl, file } of limitFiles(this.layout.version, {})) {
      files[file] = await readFile(join(this.dir(ctrl), file), 'utf8').catch(() => undefined);
    }
    return parseLimitFiles(this.layout.version, files);
  }

  /** The pids in the group (empty when it does not exist). */
  async pids(): Promise<number[]> {
    const text = await readFile(join(this.dir('cpu'), 'cgroup.procs'), 'utf8').catch(() => '');
    return text.split('\n').filter((l) => /^\d+$/.test(l)).map(Number);
  }

  async exists(): Promise<boolean> {
    for (const dir of this.dirs()) {
      if (await readdir(dir).then(() => true, () => false)) return true;
    }
    return false;
  }

  /**
   * Removes the group once it is empty: a QEMU that just exited may take a moment to leave it.
   * Resolves false when a group still has processes after `waitMs`.
   */
  async remove(waitMs = 2000): Promise<boolean> {
    let removed = true;
    for (const dir of this.dirs()) removed = (await removeDir(dir, waitMs)) && removed;
    return removed;
  }
}

async function removeDir(dir: string, waitMs: number): Promise<boolean> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      await rmdir(dir);
      return true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return true;
      if (code !== 'EBUSY' || Date.now() > deadline) return false;
      await sleep(50);
    }
  }
}

/** v2: the parent and its own parent must delegate cpu and memory to their children. */
async function enableV2Controllers(parent: string): Promise<void> {
  await mkdir(parent, { recursive: true }).catch((err: unknown) => { throw unsupported(parent, err, 'create'); });
  for (const dir of [join(parent, '..'), parent]) {
    const file = join(dir, 'cgroup.subtree_control');
    await writeFile(file, '+cpu +memory').catch((err: unknown) => { throw unsupported(file, err, 'enable controllers in'); });
  }
}

/**
 * Removes the guest groups of `stale` (this daemon's domains that do not run) under the
 * layout's parents, except those of `keep` (guests that run). A stale group may still hold a
 * QEMU that was just killed: it is given a moment to empty. Any other uuid-named group is left
 * alone, empty or not: it may be another daemon's (a second state dir on the host shares the
 * parent when both daemons run in one cgroup), and an empty one may be a group that daemon has
 * just made for a guest it is starting, before QEMU is moved into it. A group that still has
 * processes is left and reported; nothing outside the parents is touched.
 */
export async function removeStaleCgroups(layout: CgroupLayout, stale: Iterable<string>, keep: ReadonlySet<string> = new Set()): Promise<{ removed: string[]; busy: string[] }> {
  const removed: string[] = [];
  const busy: string[] = [];
  const ours = new Set(stale);
  const found = new Set<string>();
  for (const parent of new Set(Object.values(layout.parents))) {
    for (const entry of await readdir(parent).catch(() => [] as string[])) if (UuidPattern.test(entry)) found.add(entry);
  }
  for (const uuid of found) {
    if (keep.has(uuid) || !ours.has(uuid)) continue;
    if (await GuestCgroup.of(layout, uuid).remove(1000)) removed.push(uuid);
    else busy.push(uuid);
  }
  return { removed, busy };
}
