/**
 * extlinux.conf / syslinux.cfg: `LABEL` starts an entry; `KERNEL` or `LINUX` names its
 * kernel, `INITRD` its initrds (comma-separated), `APPEND` its command line (`APPEND -`:
 * none; an `initrd=` option there is the initrd when no INITRD line names one), `MENU LABEL`
 * its title and `MENU DEFAULT` makes it the default. `DEFAULT` names the default label; an
 * APPEND before the first LABEL applies to labels without their own. Keywords are
 * case-insensitive. Relative paths are relative to the directory of the configuration file,
 * as syslinux resolves them. `INCLUDE` and `CONFIG` are not followed (a warning says so).
 */
import { posix } from 'node:path';
import { MAX_ENTRIES, MAX_WORD_BYTES, checkConfigSize, checkInitrdCount, configError, type BootMenu, type MenuEntry } from './types.js';

interface Label {
  name: string;
  title?: string;
  kernel?: string;
  initrds?: string[];
  append?: string;
  menuDefault: boolean;
}

function resolveIn(dir: string, path: string): string {
  return posix.resolve(dir, path);
}

/** `source` is the configuration's path inside its filesystem (relative paths resolve against its directory). */
export function parseExtlinuxConfig(text: string, source = '/extlinux.conf'): BootMenu {
  checkConfigSize(text, source);
  const dir = posix.dirname(posix.resolve('/', source));
  const labels: Label[] = [];
  const warnings: string[] = [];
  let current: Label | undefined;
  let defaultLabel: string | undefined;
  let globalAppend: string | undefined;
  let timeout: number | undefined;
  let lineNo = 0;
  for (const raw of text.split('\n')) {
    lineNo++;
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(\S+)(?:\s+(.*))?$/s.exec(line);
    if (m === null) continue;
    const keyword = m[1]!.toLowerCase();
    let value = (m[2] ?? '').trim();
    if (value.length > MAX_WORD_BYTES) throw configError(source, `line ${lineNo}: longer than ${MAX_WORD_BYTES} bytes`, { line: lineNo });
    if (keyword === 'menu') {
      const sub = /^(\S+)(?:\s+(.*))?$/s.exec(value);
      const what = sub?.[1]?.toLowerCase();
      value = (sub?.[2] ?? '').trim();
      if (current !== undefined && what === 'label') current.title = value;
      else if (current !== undefined && what === 'default') current.menuDefault = true;
      continue;
    }
    switch (keyword) {
      case 'label':
        if (labels.length >= MAX_ENTRIES) throw configError(source, `more than ${MAX_ENTRIES} labels`);
        current = { name: value, menuDefault: false };
        labels.push(current);
        break;
      case 'default':
        defaultLabel = value;
        break;
      case 'timeout':
        // In tenths of a second.
        if (/^[0-9]{1,9}$/.test(value)) timeout = Number(value) / 10;
        break;
      case 'kernel':
      case 'linux':
        if (current !== undefined && value !== '') current.kernel = value.split(/\s+/)[0]!;
        break;
      case 'initrd':
        if (current !== undefined) current.initrds = value.split(',').map((p) => p.trim()).filter((p) => p !== '');
        break;
      case 'append':
        if (current === undefined) globalAppend = value;
        else current.append = value;
        break;
      case 'include':
      case 'config':
        warnings.push(`${keyword.toUpperCase()} ${value}: not followed`);
        break;
      default:
        break;
    }
  }
  const entries: MenuEntry[] = labels.map((l) => {
    let append = l.append ?? globalAppend ?? '';
    if (append === '-') append = '';
    let initrds = l.initrds;
    if (initrds === undefined) {
      const opt = append.split(/\s+/).find((a) => a.startsWith('initrd='));
      initrds = opt === undefined ? [] : opt.slice('initrd='.length).split(',').filter((p) => p !== '');
    }
    checkInitrdCount(initrds, source);
    return {
      title: l.title ?? l.name, id: l.name,
      ...(l.kernel === undefined ? {} : { kernel: resolveIn(dir, l.kernel) }),
      initrds: initrds.map((p) => resolveIn(dir, p)),
      cmdline: append,
    };
  });
  let defaultIndex: number | undefined = entries.length > 0 ? 0 : undefined;
  const menuDefault = labels.findIndex((l) => l.menuDefault);
  if (menuDefault >= 0) defaultIndex = menuDefault;
  else if (defaultLabel !== undefined && entries.length > 0) {
    const name = defaultLabel.split(/\s+/)[0]!;
    const found = labels.findIndex((l) => l.name === name);
    if (found >= 0) defaultIndex = found;
    else warnings.push(`DEFAULT ${defaultLabel}: no such LABEL; the first entry is the default`);
  }
  return {
    kind: 'extlinux', entries, ...(defaultIndex === undefined ? {} : { defaultIndex }),
    ...(timeout === undefined ? {} : { timeout }), warnings,
  };
}
