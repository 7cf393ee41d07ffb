/**
 * Parsers of the kernel's cgroup text: /proc/<pid>/mountinfo (where each hierarchy is mounted)
 * and /proc/<pid>/cgroup (which group of each hierarchy a process is in). Pure, so they are
 * fuzzed (parse.test.ts): what does not parse is skipped, never thrown.
 */

/** A mounted cgroup hierarchy: v1 with its controllers (`cpu`, `memory`...), or the v2 one. */
export interface CgroupMount {
  version: 1 | 2;
  /** Where it is mounted. */
  mountPoint: string;
  /** The group of the hierarchy seen at the mount point (not `/` inside some containers). */
  root: string;
  /** v1: the controllers of this hierarchy (`name=` hierarchies have none we use). */
  controllers: string[];
}

/** mountinfo escapes space, tab, newline and backslash as \ooo octal. */
function unescapeOctal(text: string): string {
  return text.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

const V1Controllers = new Set(['cpu', 'cpuacct', 'memory', 'cpuset', 'blkio', 'devices', 'freezer', 'pids', 'net_cls', 'net_prio', 'perf_event', 'hugetlb', 'rdma', 'misc']);

/** The cgroup hierarchies of a mountinfo file. */
export function parseCgroupMounts(mountinfo: string): CgroupMount[] {
  const out: CgroupMount[] = [];
  for (const line of mountinfo.split('\n')) {
    const dash = line.indexOf(' - ');
    if (dash < 0) continue;
    const left = line.slice(0, dash).split(' ');
    const right = line.slice(dash + 3).split(' ');
    const root = left[3];
    const mountPoint = left[4];
    const fstype = right[0];
    const superOptions = right[2] ?? '';
    if (root === undefined || mountPoint === undefined || !mountPoint.startsWith('/') || !root.startsWith('/')) continue;
    if (fstype === 'cgroup2') {
      out.push({ version: 2, mountPoint: unescapeOctal(mountPoint), root: unescapeOctal(root), controllers: [] });
    } else if (fstype === 'cgroup') {
      const controllers = superOptions.split(',').filter((o) => V1Controllers.has(o));
      out.push({ version: 1, mountPoint: unescapeOctal(mountPoint), root: unescapeOctal(root), controllers });
    }
  }
  return out;
}

/** One line of /proc/<pid>/cgroup: `id:controllers:path` (v2: `0::path`). */
export interface ProcCgroup {
  id: number;
  controllers: string[];
  path: string;
}

export function parseProcCgroup(text: string): ProcCgroup[] {
  const out: ProcCgroup[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\d+):([^:]*):(\/.*)$/.exec(line);
    if (!m) continue;
    out.push({ id: Number(m[1]), controllers: m[2] === '' ? [] : m[2]!.split(','), path: m[3]! });
  }
  return out;
}
