/**
 * `virtkit inspect TARGET [--json]`: partitions, filesystems (type, label, UUID, size), the
 * operating system found (os-release, hostname, architecture), kernels and initrds, and
 * bootloader configuration, read from the image without mounting it or booting anything.
 */
import { escapeForTerminal } from '../../util/terminal-text.js';
import type { Command } from 'commander';
import { inspectDisk, type InspectionReport } from '../../guestfs/index.js';
import { openDisk, resolveTarget } from '../../guestfs/index.js';
import { addGuestTargetOptions, guestTargetOptions, type GuestTargetOptions } from './guest-disk.js';

function formatReport(r: InspectionReport): string {
  const lines: string[] = [];
  lines.push(`Disk: ${r.size} bytes, ${r.format}, partition table: ${r.partitionTable.type}${r.partitionTable.diskId === undefined ? '' : ` (${r.partitionTable.diskId})`}`);
  for (const w of r.partitionTable.warnings) lines.push(`  warning: ${w}`);
  if (r.partitions.length > 0) {
    lines.push('Partitions:');
    for (const p of r.partitions) {
      lines.push(`  ${p.number}: ${p.kind} start ${p.start} size ${p.size} type ${p.typeName ?? p.type}${p.name ? ` name "${g(p.name)}"` : ''}${p.bootable ? ' bootable' : ''}`);
    }
  }
  lines.push('Filesystems:');
  if (r.filesystems.length === 0) lines.push('  (none recognized)');
  for (const f of r.filesystems) {
    lines.push(`  ${f.partition === undefined ? 'whole disk' : `partition ${f.partition}`}: ${f.type} label "${g(f.label)}" uuid ${f.uuid} size ${f.size}`);
    for (const w of f.warnings) lines.push(`    warning: ${g(w)}`);
  }
  for (const e of r.errors) lines.push(`  ${e.partition === undefined ? 'whole disk' : `partition ${e.partition}`}: unreadable: ${e.code}: ${e.message}`);
  for (const os of r.operatingSystems) {
    lines.push(`Operating system (${os.partition === undefined ? 'whole disk' : `partition ${os.partition}`}):`);
    if (os.name !== undefined) lines.push(`  Name: ${g(os.name)}`);
    if (os.versionId !== undefined) lines.push(`  Version: ${g(os.versionId)}`);
    if (os.id !== undefined) lines.push(`  ID: ${g(os.id)}`);
    if (os.hostname !== undefined) lines.push(`  Hostname: ${g(os.hostname)}`);
    if (os.architecture !== undefined) lines.push(`  Architecture: ${os.architecture}`);
  }
  for (const b of r.boot) {
    lines.push(`Boot files (${b.partition === undefined ? 'whole disk' : `partition ${b.partition}`}):`);
    for (const k of b.kernels) {
      const about = [
        ...(k.version === undefined ? [] : [`version ${g(k.version)}`]),
        ...(k.initrd === undefined ? [] : [`initrd ${g(k.initrd)}`]),
        ...(k.links === undefined ? [] : [`linked from ${k.links.map(g).join(', ')}`]),
      ];
      lines.push(`  kernel: ${g(k.path)} (${k.size} bytes)${about.length === 0 ? '' : `, ${about.join(', ')}`}`);
    }
    for (const i of b.initrds) lines.push(`  initrd: ${g(i.path)} (${i.size} bytes)${i.links === undefined ? '' : `, linked from ${i.links.map(g).join(', ')}`}`);
    for (const c of b.bootloaderConfigs) lines.push(`  bootloader config: ${g(c)}`);
  }
  return `${lines.join('\n')}\n`;
}

/** A guest field on one line: its control characters (newlines too) shown, never obeyed. */
function g(text: string): string {
  return escapeForTerminal(text);
}

export function register(program: Command): void {
  addGuestTargetOptions(program.command('inspect'))
    .description('show partitions, filesystems, operating system, kernels and bootloader config of a disk image')
    .argument('<target>', 'image file, FILE:N for partition N, or a defined guest\'s name')
    .option('--json', 'print JSON')
    .action(async (target: string, opts: { format?: string; json?: boolean } & GuestTargetOptions) => {
      const resolved = await resolveTarget(target, guestTargetOptions(opts));
      const opened = await openDisk(resolved);
      try {
        const report = await inspectDisk(opened.disk, opened.table);
        process.stdout.write(opts.json === true ? `${JSON.stringify(report, null, 2)}\n` : escapeForTerminal(formatReport(report), { keepNewlines: true }));
      } finally {
        await opened.close();
      }
    });
}
