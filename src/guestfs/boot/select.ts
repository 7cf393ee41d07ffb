/**
 * Which entry boots: the one a definition's `boot.entry` names (its index in the disk's
 * list, or its title, id, or the last part of a submenu title), else the default.
 */
import { VirtkitError } from '../../util/errors.js';
import type { BootEntry, BootInfo } from './find.js';

function describeEntries(info: BootInfo): string {
  return info.entries.slice(0, 20).map((e) => `${e.index}: "${e.title}"`).join(', ') || 'none';
}

/** Why nothing was found, when something could not be read. */
function unreadable(info: BootInfo): string {
  const first = info.errors[0];
  if (first === undefined) return '';
  const where = first.partition === undefined ? 'whole disk' : `partition ${first.partition}`;
  return `; unreadable: ${where}${first.source === undefined ? '' : ` ${first.source}`}: ${first.code}: ${first.message}`;
}

/** Throws `boot.no-entry` when nothing matches or the entry loads no kernel. */
export function selectEntry(info: BootInfo, entry?: string | number): BootEntry {
  let chosen: BootEntry | undefined;
  if (entry === undefined) {
    chosen = info.defaultIndex === undefined ? undefined : info.entries[info.defaultIndex];
    if (chosen === undefined) {
      throw new VirtkitError('boot.no-entry', info.entries.length === 0
        ? `no bootloader configuration with entries found on the disk (looked for GRUB grub.cfg, BLS /loader/entries, extlinux/syslinux)${unreadable(info)}`
        : `no default entry loads a kernel (entries: ${describeEntries(info)})`, { entries: info.entries.length });
    }
  } else if (typeof entry === 'number') {
    chosen = info.entries[entry];
    if (chosen === undefined) {
      throw new VirtkitError('boot.no-entry', `boot.entry ${entry}: the disk has ${info.entries.length} entries (${describeEntries(info)})`, { entry });
    }
  } else {
    const lastPart = (title: string): string => title.slice(title.lastIndexOf('>') + 1);
    chosen = info.entries.find((e) => e.title === entry)
      ?? info.entries.find((e) => e.id === entry)
      ?? info.entries.find((e) => lastPart(e.title) === entry);
    if (chosen === undefined) {
      throw new VirtkitError('boot.no-entry', `boot.entry "${entry}": no entry has that title or id (entries: ${describeEntries(info)})`, { entry });
    }
  }
  if (chosen.kernel === undefined) {
    throw new VirtkitError('boot.no-entry', `entry ${chosen.index} "${chosen.title}" loads no kernel`, { entry: chosen.index });
  }
  return chosen;
}
