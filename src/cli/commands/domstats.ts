/**
 * `virtkit domstats [NAME...|--all] [--json]`: CPU, memory, block and network figures of
 * running domains, as virsh domstats prints them (key=value lines per domain).
 */
import type { Command } from 'commander';
import type { DomainStats } from '../../api/index.js';
import { VirtkitError } from '../../util/errors.js';
import { printJson, withClient, withConnect, type ConnectOpts } from './connect.js';

/** virsh-style `Domain: 'NAME'` then `  key=value` lines. */
export function formatDomainStats(s: DomainStats): string {
  const lines = [`Domain: '${s.name}'`, `  state.state=${s.state}`, `  pid=${s.pid}`,
    `  cpu.time=${s.cpu.timeSeconds}`, `  cpu.user=${s.cpu.userSeconds}`, `  cpu.system=${s.cpu.systemSeconds}`,
    `  vcpu.current=${s.cpu.vcpus.length}`];
  for (const v of s.cpu.vcpus) lines.push(`  vcpu.${v.index}.thread=${v.threadId}`, `  vcpu.${v.index}.time=${v.timeSeconds ?? '-'}`);
  lines.push(`  memory.defined=${s.memory.definedBytes}`, `  memory.rss=${s.memory.rssBytes}`);
  if (s.memory.balloonBytes !== undefined) lines.push(`  balloon.current=${s.memory.balloonBytes}`);
  lines.push(`  block.count=${s.block.length}`);
  s.block.forEach((b, i) => lines.push(`  block.${i}.name=${b.id}`, `  block.${i}.rd.reqs=${b.rdOps}`, `  block.${i}.rd.bytes=${b.rdBytes}`,
    `  block.${i}.wr.reqs=${b.wrOps}`, `  block.${i}.wr.bytes=${b.wrBytes}`, `  block.${i}.fl.reqs=${b.flushOps}`,
    `  block.${i}.rd.times=${b.rdTimeNs}`, `  block.${i}.wr.times=${b.wrTimeNs}`));
  lines.push(`  net.count=${s.net.length}`);
  s.net.forEach((n, i) => lines.push(`  net.${i}.name=${n.id}`, `  net.${i}.mac=${n.mac}`, `  net.${i}.model=${n.model}`, `  net.${i}.network=${n.network}`,
    `  net.${i}.rx.bytes=${n.rxBytes ?? '-'}`, `  net.${i}.tx.bytes=${n.txBytes ?? '-'}`));
  return lines.join('\n');
}

export function register(program: Command): void {
  withConnect(program.command('domstats')
    .description('CPU, memory, block and network statistics of running domains')
    .argument('[domains...]', 'domain names (default with --all or none: every running domain)')
    .option('--all', 'every running domain')
    .option('--json', 'JSON output'))
    .action(async (domains: string[], o: ConnectOpts & { all?: boolean; json?: boolean }) => {
      if (o.all && domains.length > 0) throw new VirtkitError('argument.invalid', '--all and domain names exclude each other');
      await withClient(o, async (c) => {
        const { domains: stats } = await c.statsAll(domains);
        if (o.json) { printJson(stats); return; }
        process.stdout.write(stats.map((s) => `${formatDomainStats(s)}\n`).join('\n'));
      });
    });
}
