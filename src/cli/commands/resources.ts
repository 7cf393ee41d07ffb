/**
 * Resource limit verbs, virsh's names (docs/resource-limits.md): `schedinfo` (cpu_shares,
 * cpu_quota) and `memtune` (memory_limit as --hard-limit). Without --set / --hard-limit they
 * show the limits; with them they change them: `--live` the running guest's cgroup, `--config`
 * the saved definition, neither: both for a running guest, the saved one for a stopped guest.
 */
import type { Command } from 'commander';
import type { ResourceLimitsResult } from '../../api/index.js';
import { MinMemoryBytes, formatSize, parseSize } from '../../conf/index.js';
import { VirtkitError } from '../../util/errors.js';
import { printJson, withClient, withConnect, type ConnectOpts } from './connect.js';

type LimitOpts = ConnectOpts & { live?: boolean; config?: boolean; json?: boolean };

const SetFields = ['cpu_shares', 'cpu_quota'] as const;
type SetField = (typeof SetFields)[number];

/** `--set cpu_shares=512`, `--set cpu_quota=20`; `none` removes the limit. */
export function parseSet(text: string, previous: Partial<Record<SetField, number | null>> = {}): Partial<Record<SetField, number | null>> {
  const m = /^([a-z_]+)=(.*)$/.exec(text);
  const field = m?.[1];
  if (!m || !SetFields.includes(field as SetField)) {
    throw new VirtkitError('argument.invalid', `--set: expected cpu_shares=N or cpu_quota=PERCENT, got ${JSON.stringify(text.slice(0, 60))}`, { option: '--set' });
  }
  const value = m[2]!;
  if (value === 'none') return { ...previous, [field!]: null };
  if (!/^[0-9]{1,9}$/.test(value)) {
    throw new VirtkitError('argument.invalid', `--set ${field}: expected a whole number or none, got ${JSON.stringify(value.slice(0, 60))}`, { option: '--set' });
  }
  const n = Number(value);
  const [min, max, why] = field === 'cpu_quota' ? [1, 25500, 'percent of one host CPU; none removes the limit'] : [2, 262144, 'the cgroup weight; none is the default 1024'];
  if (n < min || n > max) {
    throw new VirtkitError('argument.invalid', `--set ${field}: must be ${min}-${max} (${why}), got ${n}`, { option: '--set', field: field!, min, max });
  }
  return { ...previous, [field!]: n };
}

/** The smallest hard limit (the definition's memory_limit minimum). */
const MinHardLimit = MinMemoryBytes;

/** virsh's --hard-limit: a plain number is KiB; a size with a unit (512M, 1GiB) as in definitions; -1 or unlimited removes it. */
export function parseHardLimit(text: string): number | null {
  if (text === '-1' || text === 'unlimited') return null;
  const plainKiB = /^[0-9]+$/.test(text);
  const bytes = plainKiB ? Number(text) * 1024 : parseSize(text);
  if (bytes < MinHardLimit) {
    const least = plainKiB ? `${MinHardLimit / 1024} (KiB)` : formatSize(MinHardLimit);
    throw new VirtkitError('argument.invalid', `--hard-limit: must be at least ${least}, got ${text} (-1 or unlimited removes the limit)`, { option: '--hard-limit', min: MinHardLimit });
  }
  return bytes;
}

function scopeOf(o: LimitOpts): { live?: true; config?: true } {
  return { ...(o.live ? { live: true as const } : {}), ...(o.config ? { config: true as const } : {}) };
}

function withScope(cmd: Command): Command {
  return cmd
    .option('--live', 'the running guest (its cgroup)')
    .option('--config', 'the saved definition, used by the next start')
    .option('--current', 'accepted for virsh compatibility: the running guest if it runs, else the saved definition')
    .option('--json', 'print as JSON');
}

function where(r: ResourceLimitsResult): string {
  if (r.changed) return [r.changed.live ? 'the running guest' : '', r.changed.config ? 'the saved definition' : ''].filter(Boolean).join(' and ');
  return r.source === 'live' ? 'the running guest' : 'the saved definition';
}

function printSched(r: ResourceLimitsResult): void {
  const lines = [
    ['Scheduler', 'posix'],
    ['cpu_shares', r.cpu_shares === undefined ? '1024 (default)' : String(r.cpu_shares)],
    ['cpu_quota', r.cpu_quota === undefined ? 'unlimited' : `${r.cpu_quota}% of one host CPU`],
    ['source', where(r)],
    ...(r.cgroup ? [['cgroup', `v${r.cgroup.version} ${r.cgroup.dirs.join(' ')}`]] : []),
  ];
  for (const [k, v] of lines) process.stdout.write(`${k!.padEnd(15)}: ${v!}\n`);
}

function printMem(r: ResourceLimitsResult): void {
  const hard = r.memory_limit === undefined ? 'unlimited' : `${Math.floor(r.memory_limit / 1024)} (${formatSize(r.memory_limit)})`;
  const lines = [['hard_limit', hard], ['soft_limit', 'unlimited'], ['swap_hard_limit', 'unlimited'], ['source', where(r)]];
  for (const [k, v] of lines) process.stdout.write(`${k!.padEnd(15)}: ${v!}\n`);
}

export function register(program: Command): void {
  withScope(withConnect(program.command('schedinfo')
    .description('show or set the CPU limits of a domain (cgroup cpu.shares and CPU quota)')
    .argument('<name>', 'domain name')
    .option('--set <field=value>', 'cpu_shares=N (2-262144; 1024 is the default weight) or cpu_quota=PERCENT of one host CPU; "none" removes it (repeatable)',
      (text: string, prev: Partial<Record<SetField, number | null>>) => parseSet(text, prev), {})
    .addHelpText('after', '\nExamples:\n  virtkit schedinfo demo\n  virtkit schedinfo demo --set cpu_quota=20 --live\n  virtkit schedinfo demo --set cpu_shares=512 --set cpu_quota=none --config\n')))
    .action(async (name: string, o: LimitOpts & { set: Partial<Record<SetField, number | null>> }) => {
      const changing = Object.keys(o.set).length > 0;
      const r = await withClient(o, (c) => (changing ? c.setResourceLimits(name, { ...o.set, ...scopeOf(o) }) : c.resourceLimits(name, o.config ? { config: true } : {})));
      if (o.json) return printJson(r);
      printSched(r);
    });

  withScope(withConnect(program.command('memtune')
    .description('show or set the memory limit of a domain (cgroup hard limit on its QEMU)')
    .argument('<name>', 'domain name')
    .option('--hard-limit <size>', 'the limit: a plain number is KiB (as in virsh), or a size like 512MiB; -1 or unlimited removes it')
    .addHelpText('after', '\nExamples:\n  virtkit memtune demo\n  virtkit memtune demo --hard-limit 1GiB\n  virtkit memtune demo --hard-limit unlimited --config\n')))
    .action(async (name: string, o: LimitOpts & { hardLimit?: string }) => {
      const r = await withClient(o, (c) => (o.hardLimit !== undefined
        ? c.setResourceLimits(name, { memory_limit: parseHardLimit(o.hardLimit), ...scopeOf(o) })
        : c.resourceLimits(name, o.config ? { config: true } : {})));
      if (o.json) return printJson(r);
      printMem(r);
    });
}
