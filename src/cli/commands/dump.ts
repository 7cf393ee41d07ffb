/** Memory dumps: dump (through the daemon) and dump-info (reads a dump file here) (docs/dumps.md). */
import { resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { readDumpFile, type DumpInfo } from '../../qemu/dump/index.js';
import { escapeForTerminal } from '../../util/terminal-text.js';
import { printJson, withClient, withConnect, type ConnectOpts } from './connect.js';
import { withJobProgress } from './job-progress.js';

type Opts = ConnectOpts & { json?: boolean };

function hex(n: number): string {
  return `0x${n.toString(16).padStart(9, '0')}`;
}

function size(n: number): string {
  return n >= 1024 * 1024 ? `${(n / (1024 * 1024)).toFixed(1)} MiB` : `${(n / 1024).toFixed(1)} KiB`;
}

/** The human form of dump-info; everything that came from the guest is escaped. */
export function formatDumpInfo(file: string, info: DumpInfo): string {
  const out: string[] = [];
  const row = (k: string, v: string): void => { out.push(`${`${k}:`.padEnd(15)} ${escapeForTerminal(v)}`); };
  row('File', file);
  row('Format', info.format === 'kdump' ? 'kdump-compressed' : `ELF core (${info.format === 'elf64' ? '64' : '32'}-bit)`);
  row('Machine', info.machine);
  row('Memory', `${size(info.memoryBytes)} in ${info.ranges.length} range${info.ranges.length === 1 ? '' : 's'}`);
  row('CPUs', String(info.cpus.length || info.kdump?.cpus || 0));
  if (info.kernel?.release !== undefined) row('Kernel', `${info.kernel.release} (from ${info.kernel.source === 'vmcoreinfo' ? 'VMCOREINFO' : 'the banner in memory'})`);
  else row('Kernel', 'unknown (no VMCOREINFO note, no banner found)');
  if (info.kernel?.banner !== undefined) row('Banner', info.kernel.banner);
  if (info.vmcoreinfo) {
    const crash = info.vmcoreinfo['CRASHTIME'];
    row('VMCOREINFO', `${Object.keys(info.vmcoreinfo).length} entries${info.vmcoreinfo['PAGESIZE'] ? `, page size ${info.vmcoreinfo['PAGESIZE']}` : ''}${crash ? `, crash time ${crash}` : ''}`);
  }
  out.push('', 'Memory ranges (guest-physical):');
  for (const r of info.ranges.slice(0, 64)) out.push(`  ${hex(r.start)} - ${hex(r.start + r.size - 1)}  ${size(r.size)}`);
  if (info.ranges.length > 64) out.push(`  ... ${info.ranges.length - 64} more (--json lists them all)`);
  for (const cpu of info.cpus) {
    const regs = Object.entries(cpu.registers);
    out.push('', `CPU ${cpu.cpu}:${regs.length === 0 ? ' (no registers for this machine)' : ''}`);
    for (let i = 0; i < regs.length; i += 3) {
      out.push(`  ${regs.slice(i, i + 3).map(([k, v]) => `${k.padEnd(8)} ${v.padStart(18)}`).join('   ')}`);
    }
  }
  return `${out.join('\n')}\n`;
}

export function register(program: Command): void {
  withConnect(program.command('dump')
    .description('write the guest\'s memory to a file (dump-guest-memory), without its cooperation; a paused guest stays paused')
    .argument('<name>', 'domain name')
    .argument('<file>', 'the dump file (created or replaced)')
    .addOption(new Option('--format <format>', 'elf or kdump-zlib').choices(['elf', 'kdump-zlib']).default('elf'))
    .option('--memory-only', 'accepted for virsh compatibility: virtkit\'s dumps are always memory-only')
    .option('--json', 'print the result as JSON'))
    .action(async (name: string, file: string, o: Opts & { format: 'elf' | 'kdump-zlib'; memoryOnly?: boolean }) => {
      const body = { file: resolve(file), format: o.format, ...(o.memoryOnly === true ? { memoryOnly: true } : {}) };
      const r = await withJobProgress(o, name, () => withClient(o, (c) => c.dump(name, body)), o.json);
      if (o.json) printJson(r);
      else process.stdout.write(`Domain '${name}' dumped to ${r.file} (${r.format}, ${size(r.bytes)})\n`);
    });

  program.command('dump-info')
    .description('read a memory dump (ELF core or kdump-compressed): memory ranges, CPU registers, kernel version')
    .argument('<file>', 'a dump file')
    .option('--json', 'print as JSON')
    .action(async (file: string, o: { json?: boolean }) => {
      const info = await readDumpFile(resolve(file));
      if (o.json) printJson(info);
      else process.stdout.write(formatDumpInfo(resolve(file), info));
    });
}
