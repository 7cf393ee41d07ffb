/**
 * Where this host's cgroups are and which group virtkit's guests go under. v2 when the cpu
 * and memory controllers are on the unified hierarchy; else v1, the cpu and memory
 * hierarchies mounted separately (or together) under /sys/fs/cgroup/<ctrl>, as on hosts
 * without a systemd-managed unified tree. Guest groups live under `virtkit/` inside the
 * group this process is in, per hierarchy: a daemon confined to a group keeps its guests in it
 * (limits set on the daemon's group cover its guests), and virtkit never touches a group
 * outside its own `virtkit/` parent.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseCgroupMounts, parseProcCgroup, type CgroupMount, type ProcCgroup } from './parse.js';

/** The controllers virtkit uses. */
export type Controller = 'cpu' | 'memory';
export const Controllers: readonly Controller[] = ['cpu', 'memory'];

export interface CgroupLayout {
  version: 1 | 2;
  /** Per controller, the directory guest groups are created in (`.../virtkit`). v2: the same for both. */
  parents: Record<Controller, string>;
}

/** Name of the parent group, under the daemon's own group. */
export const ParentGroupName = 'virtkit';

function dirOf(mount: CgroupMount, procPath: string): string {
  // /proc/self/cgroup paths are relative to the hierarchy's root; the mount shows `root` at its mount point.
  const rel = mount.root !== '/' && (procPath === mount.root || procPath.startsWith(`${mount.root}/`))
    ? procPath.slice(mount.root.length) : procPath;
  return join(mount.mountPoint, rel);
}

/** The layout from a mountinfo and a /proc/<pid>/cgroup text (pure; see detectCgroupLayout). */
export function cgroupLayoutOf(mountinfo: string, procCgroup: string): CgroupLayout | undefined {
  const mounts = parseCgroupMounts(mountinfo);
  const groups = parseProcCgroup(procCgroup);
  const v1 = (ctrl: Controller): { mount: CgroupMount; group: ProcCgroup } | undefined => {
    const mount = mounts.find((m) => m.version === 1 && m.controllers.includes(ctrl));
    const group = groups.find((g) => g.id !== 0 && g.controllers.includes(ctrl));
    return mount && group ? { mount, group } : undefined;
  };
  const cpu = v1('cpu');
  const memory = v1('memory');
  if (cpu && memory) {
    return { version: 1, parents: { cpu: join(dirOf(cpu.mount, cpu.group.path), ParentGroupName), memory: join(dirOf(memory.mount, memory.group.path), ParentGroupName) } };
  }
  const unified = mounts.find((m) => m.version === 2);
  const group = groups.find((g) => g.id === 0 && g.controllers.length === 0);
  if (unified && group && !cpu && !memory) {
    const parent = join(dirOf(unified, group.path), ParentGroupName);
    return { version: 2, parents: { cpu: parent, memory: parent } };
  }
  return undefined;
}

/** This process's layout, read from /proc; undefined when cpu and memory cannot both be found. */
export async function detectCgroupLayout(): Promise<CgroupLayout | undefined> {
  const [mountinfo, procCgroup] = await Promise.all([
    readFile('/proc/self/mountinfo', 'utf8').catch(() => ''),
    readFile('/proc/self/cgroup', 'utf8').catch(() => ''),
  ]);
  return cgroupLayoutOf(mountinfo, procCgroup);
}
