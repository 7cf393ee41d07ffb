/**
 * Boot Loader Specification type #1 entries (/loader/entries/*.conf, one file per entry:
 * `title`, `version`, `linux`, `initrd` (repeatable), `options` (repeatable, joined)) and
 * /loader/loader.conf (`default GLOB`, `timeout`). Entries are sorted as systemd-boot and
 * GRUB's blscfg sort them: by `sort-key` when present, then version, newest first, then
 * file name, last first. The default is the first entry whose id (file name without
 * `.conf`) or file name matches loader.conf's `default` glob, else the first entry.
 */
import { compareVersions } from './version-compare.js';
import { matchesGlob } from './name-glob.js';
import {
  MAX_BLS_FILES, MAX_WORD_BYTES, checkConfigSize, checkInitrdCount, configError,
  type BootMenu, type MenuEntry,
} from './types.js';

export interface BlsEntry {
  /** File name without `.conf`. */
  readonly id: string;
  readonly title?: string;
  readonly version?: string;
  readonly sortKey?: string;
  readonly machineId?: string;
  readonly linux?: string;
  readonly initrds: readonly string[];
  readonly options: string;
}

export interface LoaderConf {
  readonly default?: string;
  readonly timeout?: number;
}

const MAX_GLOB_BYTES = 256;

function keyValueLines(text: string, source: string): [string, string][] {
  checkConfigSize(text, source);
  const out: [string, string][] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(\S+)(?:\s+(.*))?$/s.exec(line);
    if (m === null) continue;
    out.push([m[1]!, (m[2] ?? '').trim()]);
  }
  return out;
}

/** One entry file. `fileName` is its name in the entries directory. */
export function parseBlsEntry(text: string, fileName: string): BlsEntry {
  const id = fileName.replace(/\.conf$/, '');
  const initrds: string[] = [];
  const options: string[] = [];
  const fields: Record<string, string> = {};
  let optionBytes = 0;
  for (const [key, value] of keyValueLines(text, fileName)) {
    if (key === 'initrd') initrds.push(...value.split(/\s+/).filter((p) => p !== ''));
    else if (key === 'options') {
      optionBytes += value.length + 1;
      if (optionBytes > MAX_WORD_BYTES) throw configError(fileName, `options longer than ${MAX_WORD_BYTES} bytes`);
      options.push(value);
    } else if (['title', 'version', 'sort-key', 'machine-id', 'linux'].includes(key)) fields[key] = value;
  }
  checkInitrdCount(initrds, fileName);
  const pick = <K extends string>(name: K, key: string): Partial<Record<K, string>> =>
    (fields[key] === undefined || fields[key] === '' ? {} : ({ [name]: fields[key] } as Record<K, string>));
  return {
    id, initrds, options: options.join(' '),
    ...pick('title', 'title'), ...pick('version', 'version'), ...pick('sortKey', 'sort-key'),
    ...pick('machineId', 'machine-id'), ...pick('linux', 'linux'),
  };
}

export function parseLoaderConf(text: string, source = 'loader.conf'): LoaderConf {
  let def: string | undefined;
  let timeout: number | undefined;
  for (const [key, value] of keyValueLines(text, source)) {
    if (key === 'default' && value !== '' && value.length <= MAX_GLOB_BYTES) def = value;
    else if (key === 'timeout' && /^[0-9]{1,6}$/.test(value)) timeout = Number(value);
  }
  return { ...(def === undefined ? {} : { default: def }), ...(timeout === undefined ? {} : { timeout }) };
}

/** systemd-boot's order: sort-key entries first (by key, machine id, version desc), then version desc, then id desc. */
export function compareBlsEntries(a: BlsEntry, b: BlsEntry): number {
  if (a.sortKey !== undefined || b.sortKey !== undefined) {
    if (a.sortKey === undefined) return 1;
    if (b.sortKey === undefined) return -1;
    if (a.sortKey !== b.sortKey) return a.sortKey < b.sortKey ? -1 : 1;
    if ((a.machineId ?? '') !== (b.machineId ?? '')) return (a.machineId ?? '') < (b.machineId ?? '') ? -1 : 1;
  }
  const byVersion = compareVersions(b.version ?? '', a.version ?? '');
  if (byVersion !== 0) return byVersion;
  return compareVersions(b.id, a.id);
}

/** The menu the entries make, in boot menu order, with loader.conf's default. */
export function buildBlsMenu(files: readonly BlsEntry[], loader: LoaderConf = {}): BootMenu {
  if (files.length > MAX_BLS_FILES) throw configError('loader/entries', `more than ${MAX_BLS_FILES} entries`);
  const sorted = [...files].sort(compareBlsEntries);
  const warnings: string[] = [];
  const entries: MenuEntry[] = sorted.map((e) => ({
    title: e.title ?? (e.version === undefined ? e.id : `${e.id} (${e.version})`),
    id: e.id,
    ...(e.linux === undefined ? {} : { kernel: e.linux }),
    initrds: e.initrds,
    cmdline: e.options,
    ...(e.version === undefined ? {} : { version: e.version }),
  }));
  let defaultIndex: number | undefined = entries.length > 0 ? 0 : undefined;
  const glob = loader.default;
  if (glob !== undefined && entries.length > 0) {
    if (glob.startsWith('@')) {
      warnings.push(`default ${glob}: systemd-boot's EFI variables are not read; the first entry is the default`);
    } else {
      const found = sorted.findIndex((e) => matchesGlob(glob, e.id) || matchesGlob(glob, `${e.id}.conf`));
      if (found < 0) warnings.push(`default "${glob}" matches no entry; the first entry is the default`);
      else defaultIndex = found;
    }
  }
  if (sorted.some((e) => e.options.includes('$'))) {
    warnings.push('options refer to variables (GRUB environment block): they are passed as written');
  }
  return {
    kind: 'bls', entries, ...(defaultIndex === undefined ? {} : { defaultIndex }),
    ...(loader.timeout === undefined ? {} : { timeout: loader.timeout }), warnings,
  };
}
