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
      lines.push(`  ${p.number}: ${p.kind} start ${p.start} size ${p.size} type ${p.typeName ?? p.type}${p.name ? ` name "${p.name}"` : ''}${p.bootable ? ' bootable' : ''}`);
    }
  }
  lines.push('Filesystems:');
  if (r.filesystems.length === 0) lines.push('  (none recognized)');
  for (const f of r.filesystems) {
    lines.push(`  ${f.partition === undefined ? 'whole disk' : `partition ${f.partition}`}: ${f.type} label "${f.label}" uuid ${f.uuid} size ${f.size}`);
    for (const w of f.warnings) lines.push(`    warning: ${w}`);
  }
  for (const e of r.errors) lines.push(`  ${e.partition === undefined ? 'whole disk' : `partition ${e.partition}`}: unreadable: ${e.code}: ${e.message}`);
  for (const os of r.operatingSystems) {
    lines.push(`Operating system (${os.partition === undefined ? 'whole disk' : `partition ${os.partition}`}):`);
    if (os.name !== undefined) lines.push(`  Name: ${os.name}`);
    if (os.versionId !== undefined) lines.push(`  Version: ${os.versionId}`);
    if (os.id !== undefined) lines.push(`  ID: ${os.id}`);
    if (os.hostname !== undefined) lines.push(`  Hostname: ${os.hostname}`);
    if (os.architecture !== undefined) lines.push(`  Architecture: ${os.architecture}`);
  }
  for (const b of r.boot) {
    lines.push(`Boot files (${b.partition === undefined ? 'whole disk' : `partition ${b.partition}`}):`);
    for (const k of b.kernels) lines.push(`  kernel: ${k.path} (${k.size} bytes)`);
    for (const i of b.initrds) lines.push(`  initrd: ${i.path} (${i.size} bytes)`);
    for (const c of b.bootloaderConfigs) lines.push(`  bootloader config: ${c}`);
  }
  return `${lines.join('\n')}\n`;
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
