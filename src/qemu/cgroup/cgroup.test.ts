import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { cgroupLayoutOf, GuestCgroup, limitFiles, parseCgroupMounts, parseLimitFiles, parseProcCgroup, removeStaleCgroups, sharesToWeight, weightToShares } from './index.js';

const V1Mountinfo = [
  '31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
  '32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu',
  '33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct',
  '35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
  '39 31 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd',
  '40 31 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw',
].join('\n');
const V1ProcCgroup = '9:name=systemd:/\n4:memory:/sandbox/abc\n2:cpuacct:/\n1:cpu:/\n0::/\n';

describe('layout', () => {
  test('v1 with cpu and memory mounted apart (a unified hierarchy beside them does not count)', () => {
    expect(cgroupLayoutOf(V1Mountinfo, V1ProcCgroup)).toEqual({
      version: 1, parents: { cpu: '/sys/fs/cgroup/cpu/virtkit', memory: '/sys/fs/cgroup/memory/sandbox/abc/virtkit' },
    });
  });
  test('v1 with cpu,cpuacct together', () => {
    const mountinfo = '32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory';
    expect(cgroupLayoutOf(mountinfo, '3:cpu,cpuacct:/a\n4:memory:/a\n')?.parents.cpu).toBe('/sys/fs/cgroup/cpu,cpuacct/a/virtkit');
  });
  test('v2: the daemon\'s own group; a container\'s mount root is taken off', () => {
    const mountinfo = '30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw';
    expect(cgroupLayoutOf(mountinfo, '0::/system.slice/virtkit.service\n')).toEqual({ version: 2, parents: {
      cpu: '/sys/fs/cgroup/system.slice/virtkit.service/virtkit', memory: '/sys/fs/cgroup/system.slice/virtkit.service/virtkit' } });
    const container = '30 23 0:26 /lxc/c1 /sys/fs/cgroup rw - cgroup2 cgroup2 rw';
    expect(cgroupLayoutOf(container, '0::/lxc/c1/init\n')?.parents.cpu).toBe('/sys/fs/cgroup/init/virtkit');
  });
  test('neither: undefined', () => {
    expect(cgroupLayoutOf('', '')).toBeUndefined();
    expect(cgroupLayoutOf('32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu', '1:cpu:/\n')).toBeUndefined();
  });
  test('fuzz: random and mutated mountinfo and /proc/<pid>/cgroup never throw', () => {
    let seed = 3;
    const random = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
    const alphabet = ' -:/,\n0123abc\\cgroup2memorycpu';
    for (let i = 0; i < 3000; i++) {
      const mutate = (text: string): string => {
        const chars = [...text];
        for (let k = random(8); k > 0; k--) chars[random(chars.length)] = alphabet[random(alphabet.length)]!;
        return i % 4 === 0 ? Array.from({ length: random(200) }, () => alphabet[random(alphabet.length)]).join('') : chars.join('');
      };
      const mountinfo = mutate(V1Mountinfo);
      const proc = mutate(V1ProcCgroup);
      for (const m of parseCgroupMounts(mountinfo)) expect(m.mountPoint.startsWith('/')).toBe(true);
      for (const g of parseProcCgroup(proc)) expect(g.path.startsWith('/')).toBe(true);
      const layout = cgroupLayoutOf(mountinfo, proc);
      if (layout) expect(layout.parents.cpu.endsWith('/virtkit')).toBe(true);
    }
  });
});

describe('limits', () => {
  test('v1 and v2 files, and read back', () => {
    const limits = { cpu_shares: 512, cpu_quota: 20, memory_limit: 1024 ** 3 };
    expect(limitFiles(1, limits).map((f) => `${f.file}=${f.value}`)).toEqual([
      'cpu.shares=512', 'cpu.cfs_period_us=100000', 'cpu.cfs_quota_us=20000', 'memory.limit_in_bytes=1073741824']);
    expect(limitFiles(2, limits).map((f) => `${f.file}=${f.value}`)).toEqual(['cpu.weight=20', 'cpu.max=20000 100000', 'memory.max=1073741824']);
    expect(limitFiles(1, {}).map((f) => f.value)).toEqual(['1024', '100000', '-1', '-1']);
    expect(limitFiles(2, {}).map((f) => f.value)).toEqual(['100', 'max 100000', 'max']);
    expect(parseLimitFiles(1, { 'cpu.shares': '512\n', 'cpu.cfs_quota_us': '20000\n', 'cpu.cfs_period_us': '100000\n', 'memory.limit_in_bytes': '1073741824\n' })).toEqual(limits);
    expect(parseLimitFiles(1, { 'cpu.shares': '1024\n', 'cpu.cfs_quota_us': '-1\n', 'memory.limit_in_bytes': '9223372036854771712\n' })).toEqual({});
    expect(parseLimitFiles(2, { 'cpu.weight': '100', 'cpu.max': 'max 100000', 'memory.max': 'max' })).toEqual({});
    expect(parseLimitFiles(2, { 'cpu.max': '50000 100000', 'memory.max': '1048576' })).toEqual({ cpu_quota: 50, memory_limit: 1048576 });
  });
  test('shares and weights map both ways at the ends and the defaults', () => {
    expect([sharesToWeight(2), sharesToWeight(1024), sharesToWeight(262144)]).toEqual([1, 40, 10000]);
    expect([weightToShares(1), weightToShares(10000)]).toEqual([2, 262144]);
  });
});

describe('a group in a fake hierarchy', () => {
  test('create, move a pid, apply, read, remove; stale removal spares running and busy groups', async () => {
    const root = await mkdtemp(join(tmpdir(), 'vk-cgroup-'));
    try {
      const layout = { version: 1 as const, parents: { cpu: join(root, 'cpu', 'virtkit'), memory: join(root, 'memory', 'virtkit') } };
      const uuid = '00000000-0000-4000-8000-000000000001';
      const group = GuestCgroup.of(layout, uuid);
      await group.create();
      await group.addProcess(1234);
      await group.apply({ cpu_quota: 20 });
      expect(await readFile(join(layout.parents.cpu, uuid, 'cgroup.procs'), 'utf8')).toBe('1234\n');
      expect(await group.read()).toEqual({ cpu_quota: 20 });
      expect(await group.pids()).toEqual([1234]);
      expect(() => GuestCgroup.of(layout, '../etc')).toThrow(/not a domain uuid/);
      // a plain directory is no cgroup: rmdir fails as the kernel's would with files in it
      expect(await group.remove(0)).toBe(false);
      const empty = '00000000-0000-4000-8000-000000000002';
      const running = '00000000-0000-4000-8000-000000000003';
      const another = '00000000-0000-4000-8000-000000000004';
      for (const u of [empty, running, another]) for (const p of Object.values(layout.parents)) await mkdir(join(p, u));
      await writeFile(join(layout.parents.cpu, 'not-a-uuid'), '');
      // Only this daemon's stale domains' groups go; another daemon's empty group stays.
      const result = await removeStaleCgroups(layout, [empty, running], new Set([running]));
      expect(result.removed).toEqual([empty]);
      expect((await readdir(layout.parents.cpu)).sort()).toEqual([uuid, running, another, 'not-a-uuid'].sort());
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
