import { describe, expect, it } from 'vitest';
import { isVirtkitError } from '../../util/errors.js';
import type { BootEntry, BootInfo } from './find.js';
import { selectEntry } from './select.js';

function entry(index: number, title: string, extra: Partial<BootEntry> = {}): BootEntry {
  return { index, title, kernel: `/vmlinuz-${index}`, initrds: [], cmdline: '', loader: 'grub', source: '/boot/grub/grub.cfg', initrdFiles: [], missing: [], ...extra };
}

const INFO: BootInfo = {
  entries: [
    entry(0, 'Debian', { id: 'debian-simple' }),
    entry(1, 'Advanced>Debian, with Linux 6.1'),
    { ...entry(2, 'UEFI Firmware Settings'), kernel: undefined } as BootEntry,
  ],
  defaultIndex: 1,
  menus: [],
  errors: [],
};

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return isVirtkitError(err) ? err.code : 'not-a-virtkit-error';
  }
  return undefined;
}

describe('selectEntry', () => {
  it('takes the default when no entry is named', () => {
    expect(selectEntry(INFO).index).toBe(1);
  });

  it('picks by index, full title, id, or the last part of a submenu title', () => {
    expect(selectEntry(INFO, 0).title).toBe('Debian');
    expect(selectEntry(INFO, 'Advanced>Debian, with Linux 6.1').index).toBe(1);
    expect(selectEntry(INFO, 'debian-simple').index).toBe(0);
    expect(selectEntry(INFO, 'Debian, with Linux 6.1').index).toBe(1);
  });

  it('refuses missing entries and entries without a kernel with boot.no-entry', () => {
    expect(codeOf(() => selectEntry(INFO, 3))).toBe('boot.no-entry');
    expect(codeOf(() => selectEntry(INFO, 'Nope'))).toBe('boot.no-entry');
    expect(codeOf(() => selectEntry(INFO, 2))).toBe('boot.no-entry');
    expect(codeOf(() => selectEntry({ entries: [], menus: [], errors: [] }))).toBe('boot.no-entry');
    expect(() => selectEntry({ entries: [], menus: [], errors: [{ partition: 1, source: '/boot/grub/grub.cfg', code: 'boot.config-corrupt', message: 'line 3: block is not closed' }] }))
      .toThrow(/partition 1 \/boot\/grub\/grub.cfg: boot.config-corrupt: line 3/);
    expect(codeOf(() => selectEntry({ ...INFO, defaultIndex: undefined } as BootInfo))).toBe('boot.no-entry');
  });
});
