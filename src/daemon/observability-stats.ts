/**
 * A running guest's figures (`virtkit domstats`, `GET /metrics`): CPU time from /proc (the
 * whole QEMU process and each vCPU thread, the threads named by `query-cpus-fast`), memory
 * (QEMU's resident set; the balloon's size when the guest has one), block I/O per disk
 * (`query-blockstats`), and per NIC what QEMU has: user networking keeps no byte counters, so
 * those are null (docs/observability.md). The QMP figures of a guest are cached for a second:
 * a scrape every second of 100 guests costs one round of QMP per guest per second at most.
 */
import { readFile } from 'node:fs/promises';
import type { BlockStats, DomainStats, NetStats } from '../api/index.js';
import type { GuestHandle } from '../qemu/index.js';

/** Clock ticks per second of /proc's CPU times (USER_HZ: 100 on every Linux architecture virtkit runs on). */
const UserHz = 100;
const CacheMs = 1_000;

interface ProcCpu {
  user: number;
  system: number;
}

/** utime and stime of a /proc stat line, in seconds (the command name may hold spaces and parentheses). */
export function parseProcStat(text: string): ProcCpu | undefined {
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  const fields = text.slice(close + 2).trim().split(/\s+/);
  // fields[0] is the state (field 3 of proc(5)); utime and stime are fields 14 and 15.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return undefined;
  return { user: utime / UserHz, system: stime / UserHz };
}

async function procCpu(path: string): Promise<ProcCpu | undefined> {
  return readFile(path, 'utf8').then(parseProcStat, () => undefined);
}

async function rssBytes(pid: number): Promise<number> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(text)?.[1];
  return kb === undefined ? 0 : Number(kb) * 1024;
}

interface QmpFigures {
  at: number;
  vcpus: { index: number; threadId: number }[];
  block: BlockStats[];
  balloonBytes?: number;
}

/** A disk's id from query-blockstats' qdev path (`/machine/peripheral/disk0/virtio-backend`) or plain id. */
export function diskIdOfQdev(qdev: string): string {
  const m = /^\/machine\/peripheral\/([^/]+)/.exec(qdev);
  return m ? m[1]! : qdev;
}

function int(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? Math.trunc(v) : 0;
}

async function qmpFigures(handle: GuestHandle): Promise<QmpFigures> {
  const q = (execute: string): Promise<unknown> => handle.monitor({ qmp: { execute } });
  // Three commands per guest and second at most (a scrape of 100 guests waits on these).
  const [cpus, blocks, balloon] = await Promise.all([
    q('query-cpus-fast').catch(() => []),
    q('query-blockstats').catch(() => []),
    q('query-balloon').catch(() => undefined),
  ]);
  const vcpus = (Array.isArray(cpus) ? cpus : []).map((c: { 'cpu-index'?: unknown; 'thread-id'?: unknown }) => ({ index: int(c['cpu-index']), threadId: int(c['thread-id']) }));
  const block: BlockStats[] = [];
  for (const b of (Array.isArray(blocks) ? blocks : []) as { device?: string; qdev?: string; stats?: Record<string, unknown> }[]) {
    const id = b.qdev ? diskIdOfQdev(b.qdev) : b.device ?? '';
    if (id === '' || !b.stats) continue;
    const s = b.stats;
    block.push({
      id, rdBytes: int(s.rd_bytes), wrBytes: int(s.wr_bytes), rdOps: int(s.rd_operations), wrOps: int(s.wr_operations),
      flushOps: int(s.flush_operations), rdTimeNs: int(s.rd_total_time_ns), wrTimeNs: int(s.wr_total_time_ns),
    });
  }
  const actual = (balloon as { actual?: unknown } | undefined)?.actual;
  return { at: Date.now(), vcpus, block, ...(typeof actual === 'number' ? { balloonBytes: actual } : {}) };
}

/** Figures of running guests, with the QMP part cached per guest for a second. */
export class GuestStatsCollector {
  private readonly cache = new WeakMap<GuestHandle, Promise<QmpFigures>>();

  async collect(name: string, state: string, handle: GuestHandle): Promise<DomainStats> {
    let figures = this.cache.get(handle);
    const fresh = figures && await figures.then((f) => Date.now() - f.at < CacheMs, () => false);
    if (!figures || !fresh) {
      figures = qmpFigures(handle);
      this.cache.set(handle, figures);
    }
    const f = await figures;
    const def = handle.liveDefinition();
    const [proc, rss, threads] = await Promise.all([
      procCpu(`/proc/${handle.pid}/stat`),
      rssBytes(handle.pid),
      Promise.all(f.vcpus.map(async (v) => ({ ...v, cpu: await procCpu(`/proc/${handle.pid}/task/${v.threadId}/stat`) }))),
    ]);
    const net: NetStats[] = def.nics.map((n) => ({
      id: n.id, mac: n.mac, model: n.model, network: n.network,
      rxBytes: null, txBytes: null, rxPackets: null, txPackets: null,
    }));
    return {
      name, state, pid: handle.pid,
      cpu: {
        timeSeconds: round((proc?.user ?? 0) + (proc?.system ?? 0)),
        userSeconds: round(proc?.user ?? 0),
        systemSeconds: round(proc?.system ?? 0),
        vcpus: threads.map((t) => ({ index: t.index, threadId: t.threadId, timeSeconds: t.cpu ? round(t.cpu.user + t.cpu.system) : null })),
      },
      memory: { definedBytes: def.memory, rssBytes: rss, ...(f.balloonBytes !== undefined ? { balloonBytes: f.balloonBytes } : {}) },
      // Only the definition's disks: QEMU also lists nodes such as UEFI's pflash pair.
      block: f.block.filter((b) => def.disks.some((d) => d.id === b.id)),
      net,
    };
  }
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
