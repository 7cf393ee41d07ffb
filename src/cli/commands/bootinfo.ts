/**
 * `virtkit bootinfo TARGET [--format FMT] [--json]`: the boot entries a disk image's
 * bootloader configurations (GRUB 2, BLS, extlinux/syslinux) offer, where their kernels and
 * initrds are, and which entry `boot: { loader: guest }` would boot. Read in userspace.
 */
import { escapeForTerminal } from '../../util/terminal-text.js';
import type { Command } from 'commander';
import { candidatePaths, findBootEntries, type BootEntry, type BootInfo, type FileLocation } from '../../guestfs/boot/index.js';
import { openDisk, resolveTarget } from '../../guestfs/index.js';
import { addGuestTargetOptions, guestTargetOptions, type GuestTargetOptions } from './guest-disk.js';
import type { BlockDevice } from '../../storage/block/index.js';
import { VirtkitError } from '../../util/errors.js';

/** Only for a better error message: the format itself is never taken from content. */
async function hasQcow2Magic(disk: BlockDevice): Promise<boolean> {
  if (disk.size < 4) return false;
  return Buffer.from(await disk.read(0, 4)).equals(Buffer.from([0x51, 0x46, 0x49, 0xfb]));
}

/** Guest text (titles, paths, command lines) on one line: control characters, newlines too, shown as escapes. */
function g(text: string): string {
  return escapeForTerminal(text);
}

function where(partition: number | undefined): string {
  return partition === undefined ? 'whole disk' : `partition ${partition}`;
}

function located(path: string, file: FileLocation | undefined): string {
  if (file === undefined) return `${g(path)} (missing)`;
  const at = file.path === path ? '' : ` at ${g(file.path)}`;
  return `${g(path)}${at} (${where(file.partition)}, ${file.size} bytes)`;
}

function formatEntry(e: BootEntry, isDefault: boolean): string[] {
  const lines = [`${isDefault ? '*' : ' '} ${e.index}: ${g(e.title)}${e.id === undefined ? '' : `  [id ${g(e.id)}]`}`];
  lines.push(`      loader:  ${e.loader} ${e.source} (${where(e.partition)})`);
  lines.push(`      kernel:  ${e.kernel === undefined ? '(none: the entry loads no Linux kernel)' : located(e.kernel, e.kernelFile)}`);
  e.initrds.forEach((p) => lines.push(`      initrd:  ${located(p, e.initrdFiles.find((f) => candidatePaths(p).includes(f.path)))}`));
  lines.push(`      cmdline: ${g(e.cmdline)}`);
  return lines;
}

function formatInfo(info: BootInfo): string {
  const lines: string[] = [];
  if (info.menus.length === 0) lines.push('No bootloader configuration found (looked for GRUB grub.cfg, BLS /loader/entries, extlinux/syslinux).');
  for (const m of info.menus) {
    lines.push(`Configuration: ${m.loader} ${m.source} (${where(m.partition)})${m.timeout === undefined ? '' : `, timeout ${m.timeout} s`}`);
    for (const w of m.warnings) lines.push(`  warning: ${g(w)}`);
  }
  for (const e of info.errors) lines.push(`Unreadable: ${where(e.partition)}${e.source === undefined ? '' : ` ${e.source}`}: ${e.code}: ${e.message}`);
  if (info.entries.length > 0) lines.push('Entries (* boots by default):');
  for (const e of info.entries) lines.push(...formatEntry(e, e.index === info.defaultIndex));
  if (info.entries.length > 0 && info.defaultIndex === undefined) lines.push('No entry loads a kernel: nothing would boot.');
  return `${lines.join('\n')}\n`;
}

export function register(program: Command): void {
  addGuestTargetOptions(program.command('bootinfo'))
    .description('list the boot entries of a disk image (GRUB, BLS, extlinux) and which one `boot: { loader: guest }` would boot')
    .argument('<target>', 'image file, FILE:N for partition N, or a defined guest\'s name')
    .option('--json', 'print JSON')
    .addHelpText('after', `
Examples:
  virtkit bootinfo disk.qcow2
  virtkit bootinfo /dev/vg/disk --format raw --json`)
    .action(async (target: string, opts: { format?: string; json?: boolean } & GuestTargetOptions) => {
      const resolved = await resolveTarget(target, guestTargetOptions(opts));
      const opened = await openDisk(resolved);
      try {
        const info = await findBootEntries(opened.disk);
        if (info.menus.length === 0 && resolved.format === 'raw' && (await hasQcow2Magic(opened.disk))) {
          throw new VirtkitError('fs.unsupported', `${resolved.path} looks like a qcow2 image: pass --format qcow2 (formats are never guessed)`, { path: resolved.path });
        }
        process.stdout.write(opts.json === true ? `${JSON.stringify(info, null, 2)}\n` : escapeForTerminal(formatInfo(info), { keepNewlines: true }));
      } finally {
        await opened.close();
      }
    });
}
