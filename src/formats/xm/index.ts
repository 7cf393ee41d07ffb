/**
 * Xen xm/xl domain configs read into definition input (docs/xm.md). The file is Python; it is
 * parsed as a literal subset (parser.ts) and never run, then each setting is mapped through
 * the key table (mapping.ts). What the mapping changed is returned as warnings and kept in the
 * definition's `notes`; what it cannot honour fails the import unless `lenient`.
 */
import { VirtkitError } from '../../util/errors.js';
import { BootKeys, unsupported, warn, XmKeys, type MapState } from './mapping.js';
import { parseXm, type XmAssignment } from './parser.js';
import { ValueReader } from './values.js';

export { parseXm, MaxXmBytes, type XmAssignment, type XmValue } from './parser.js';
export { XmKeys, type KeyRule } from './mapping.js';
export { renderXmKeyTable } from './docs.js';

/** Something the import changed or could not keep: the setting (`vif[0].bridge`) and what happened, with its line. */
export interface ImportWarning {
  path: string;
  message: string;
}

export interface XmReadOptions {
  /** Import even what cannot be honoured; it is listed in the definition's `notes`. */
  lenient?: boolean;
  /** The file name, for messages. */
  sourceName?: string;
}

export interface XmImport {
  /** Input for the schema: not validated, defaults not applied. */
  definition: Record<string, unknown>;
  warnings: ImportWarning[];
}

/**
 * Read an xm/xl config.
 * @throws VirtkitError('definition.invalid') for text outside the literal subset or a bad
 *         value, naming the line and column; VirtkitError('definition.unsupported') for
 *         settings virtkit cannot honour (without `lenient`), listed in `data.unsupported`.
 */
export function readXmConfig(text: string, opts: XmReadOptions = {}): XmImport {
  refuseMarkup(text, opts.sourceName);
  const assignments = parseXm(text, opts.sourceName);
  const s: MapState = {
    read: new ValueReader(opts.sourceName),
    settings: new Map(),
    def: {},
    warnings: [],
    unsupported: [],
    renamedDevices: new Map(),
  };
  const settings = s.settings as Map<string, XmAssignment>;
  for (const a of assignments) {
    const earlier = settings.get(a.name);
    // Python keeps the last value; say so, since the first is usually the one meant.
    if (earlier !== undefined) warn(s, a.name, a.at, `set again (first on line ${earlier.at.line}): the last value counts, as in Python`);
    settings.set(a.name, a);
  }
  for (const a of settings.values()) {
    const rule = XmKeys[a.name];
    if (rule === undefined) unsupported(s, a.name, a.at, 'not a setting virtkit reads');
    else if (rule.unsupported !== undefined) unsupported(s, a.name, a.at, rule.unsupported);
    else rule.map?.(s, a);
  }
  composeMemory(s);
  composeBoot(s);
  if (s.unsupported.length > 0 && opts.lenient !== true) {
    const where = opts.sourceName === undefined ? 'the xm config' : opts.sourceName;
    // One per line, in line order, as the libvirt importer lists them.
    const list = [...s.unsupported].sort((a, b) => lineOf(a) - lineOf(b)).map((u) => `  ${u.path}: ${u.message}`);
    throw new VirtkitError('definition.unsupported',
      `${where}: ${s.unsupported.length === 1 ? 'a setting' : `${s.unsupported.length} settings`} cannot be honoured (--lenient imports anyway and keeps this list in notes):\n${list.join('\n')}`,
      { unsupported: [...s.unsupported].sort((a, b) => lineOf(a) - lineOf(b)).map((u) => `${u.path}: ${u.message}`), ...(opts.sourceName === undefined ? {} : { source: opts.sourceName }) });
  }
  const all = [...s.warnings, ...s.unsupported.map((u) => ({ path: u.path, message: `${u.message} (not imported)` }))]
    .sort((a, b) => lineOf(a) - lineOf(b));
  if (all.length > 0) s.def['notes'] = all.map((w) => `xm ${w.path}: ${w.message}`);
  return { definition: s.def, warnings: all };
}

/**
 * A document that starts with `<` (after blanks or a byte order mark) is markup, most likely
 * libvirt XML given with `--format xm`: say so rather than report a Python syntax error.
 */
function refuseMarkup(text: string, sourceName: string | undefined): void {
  if (!/^\uFEFF?\s*</.test(text)) return;
  const where = sourceName ?? 'the file';
  const hint = /^\uFEFF?\s*(<\?xml[^>]*>\s*)?<domain[\s>]/.test(text) ? ': it is libvirt domain XML (use --format libvirt, or leave --format out)' : ': it starts with "<", as XML does';
  throw new VirtkitError('definition.invalid', `${where}: not an xm config${hint}`, { path: 'definition', rule: 'xm', line: 1, column: 1, ...(sourceName === undefined ? {} : { source: sourceName }) });
}

function lineOf(w: ImportWarning): number {
  return Number(/^line (\d+)/.exec(w.message)?.[1] ?? 0);
}

/** `maxmem` above `memory`: the guest's RAM is maxmem (libvirt reads it the same way). */
function composeMemory(s: MapState): void {
  const maxmem = s.settings.get('maxmem');
  if (maxmem === undefined) return;
  const max = s.read.integer(maxmem, 1, 16 * 1024 * 1024);
  const memory = s.settings.get('memory');
  const current = memory === undefined ? undefined : s.read.integer(memory, 1, 16 * 1024 * 1024);
  if (current === undefined || max > current) {
    s.def['memory'] = `${max}MiB`;
    if (current !== undefined) {
      warn(s, 'maxmem', maxmem.at, `the guest gets maxmem (${max} MiB) from the start: virtkit has no boot-time balloon target (\`virtkit setmem NAME ${current}MiB\` after start lowers it)`);
    }
  } else if (max < current) {
    warn(s, 'maxmem', maxmem.at, `maxmem (${max} MiB) is below memory (${current} MiB) and is ignored`);
  }
}

/** pygrub and its arguments. */
const PygrubArgs = /^--(entry|kernel|ramdisk|args)=(.*)$/s;

function composeBoot(s: MapState): void {
  const get = (k: (typeof BootKeys)[number]): XmAssignment | undefined => s.settings.get(k);
  const str = (k: (typeof BootKeys)[number]): string | undefined => {
    const a = get(k);
    return a === undefined ? undefined : s.read.string(a);
  };
  const builder = get('builder') ?? get('type');
  let hvm = false;
  if (builder !== undefined) {
    const kind = s.read.string(builder);
    if (!/^(hvm|linux|generic|pv|pvh)$/.test(kind)) s.read.fail(builder.value, builder.name, `must be hvm, pv, pvh, linux or generic, got "${kind}"`);
    hvm = kind === 'hvm';
  }
  const bootOrder = get('boot');
  if (bootOrder !== undefined) {
    const order = s.read.string(bootOrder);
    if (!/^[a-d n]*$/.test(order)) s.read.fail(bootOrder.value, 'boot', `must be boot devices like "c", "dc" or "cdn", got "${order}"`);
    if (order.trim() !== '' && order.trim()[0] !== 'c') {
      unsupported(s, 'boot', bootOrder.at, `booting from ${order.trim()[0] === 'n' ? 'the network' : 'a CD-ROM'} first is not supported: the guest boots from its first disk`);
    }
  }
  const bootloader = get('bootloader');
  let kernel = get('kernel');
  // Old HVM configs name Xen's firmware as the kernel; under QEMU that is SeaBIOS's job.
  if (kernel !== undefined && /(^|\/)hvmloader$/.test(s.read.string(kernel))) {
    warn(s, 'kernel', kernel.at, 'hvmloader is Xen\'s HVM firmware: dropped, the guest boots through SeaBIOS from its disk');
    kernel = undefined;
  }
  if (bootloader !== undefined) {
    const loader = s.read.string(bootloader);
    if (!/(^|\/)pygrub$/.test(loader)) {
      unsupported(s, 'bootloader', bootloader.at, `boot loader ${loader} is not supported (pygrub only: virtkit reads the guest's boot menu itself)`);
      return;
    }
    const boot: Record<string, unknown> = { loader: 'guest' };
    const argsKey = get('bootloader_args') ?? get('bootargs');
    if (argsKey !== undefined) {
      const args = argsKey.value.kind === 'list' ? s.read.strings(argsKey).map((x) => x.text) : s.read.string(argsKey).split(/\s+/).filter((x) => x !== '');
      for (const arg of args) {
        const m = PygrubArgs.exec(arg);
        if (m === null) {
          if (arg !== '-q' && arg !== '--quiet') unsupported(s, argsKey.name, argsKey.at, `pygrub argument ${arg} is not supported (--entry, --kernel, --ramdisk, --args are)`);
          continue;
        }
        const field = m[1] === 'ramdisk' ? 'initrd' : m[1] === 'args' ? 'cmdline' : m[1]!;
        boot[field] = field === 'entry' && /^[0-9]+$/.test(m[2]!) ? Number(m[2]) : m[2];
      }
    }
    for (const k of ['kernel', 'ramdisk', 'root', 'extra', 'cmdline'] as const) {
      const a = get(k);
      if (a !== undefined) warn(s, k, a.at, `ignored with a boot loader: the guest's own boot menu entry says it (pygrub's --${k === 'ramdisk' ? 'ramdisk' : k === 'kernel' ? 'kernel' : 'args'}= would)`);
    }
    s.def['boot'] = boot;
    return;
  }
  if (kernel === undefined) {
    for (const k of ['ramdisk', 'root', 'extra', 'cmdline'] as const) {
      const a = get(k);
      if (a !== undefined) warn(s, k, a.at, 'ignored: there is no kernel to boot directly (the guest boots from its disk through the firmware)');
    }
    if (!hvm && builder !== undefined) warn(s, builder.name, builder.at, 'a paravirtual guest without kernel or bootloader: it boots from its disk through the firmware');
    return;
  }
  const boot: Record<string, unknown> = { loader: 'direct', kernel: s.read.string(kernel) };
  const ramdisk = str('ramdisk');
  if (ramdisk !== undefined) boot['initrd'] = ramdisk;
  let cmdline: string | undefined;
  const whole = get('cmdline');
  if (whole !== undefined) {
    cmdline = s.read.string(whole);
    for (const k of ['root', 'extra'] as const) {
      const a = get(k);
      if (a !== undefined) warn(s, k, a.at, 'ignored: cmdline gives the whole kernel command line (as xl reads it)');
    }
  } else {
    const root = str('root');
    const extra = str('extra');
    const parts = [...(root === undefined ? [] : [`root=${root}`]), ...(extra === undefined ? [] : [extra])];
    if (parts.length > 0) cmdline = parts.join(' ');
  }
  if (cmdline !== undefined) {
    const at = (whole ?? get('root') ?? get('extra'))!.at;
    boot['cmdline'] = renameRoot(s, cmdline, whole?.name ?? 'root', at);
  }
  s.def['boot'] = boot;
}

/** `root=/dev/xvda1` names the disk as Xen showed it; under virtkit the guest sees it as the target it was given. */
function renameRoot(s: MapState, cmdline: string, key: string, at: XmAssignment['at']): string {
  return cmdline.replace(/(^|\s)root=\/dev\/([a-z]+[0-9]*)(?=\s|$)/g, (whole, lead: string, dev: string) => {
    const renamed = s.renamedDevices.get(dev);
    if (renamed === undefined || renamed === dev) return whole;
    warn(s, key, at, `root=/dev/${dev} is read as root=/dev/${renamed}: that is the disk's name in the guest under virtkit`);
    return `${lead}root=/dev/${renamed}`;
  });
}
