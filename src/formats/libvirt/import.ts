/**
 * libvirt domain XML -> definition input. The importer reads the element tree through a
 * `Reader` that marks what it reads; whatever is left unread at the end is, by construction,
 * not honoured, and is reported by its XPath (mapping.ts says why). Nothing is dropped in
 * silence: without `lenient` the import fails listing everything not honoured; with it the
 * list goes into the definition's `notes`.
 */
import { VirtkitError } from '../../util/errors.js';
import { escapeForTerminal } from '../../util/terminal-text.js';
import { genericXpath, mappingRow, unsupportedReason } from './mapping.js';
import { VirtkitElements, VirtkitNamespace } from './metadata.js';
import { scaledBytes } from './units.js';
import { readXml, type XmlElement } from './xml-reader.js';

/** A document value as shown in a message: JSON-quoted, control characters escaped (it may reach a terminal). */
function quoted(value: unknown): string {
  return escapeForTerminal(JSON.stringify(value) ?? 'nothing');
}

export const QemuNamespace = 'http://libvirt.org/schemas/domain/qemu/1.0';

/** An error message lists this many items; `data.unsupported` has them all. */
const MaxListedInMessage = 100;
/** The schema keeps at most 1024 notes. */
const MaxNotes = 1024;

export interface ImportOptions {
  lenient?: boolean;
  /** Called with each generic path the importer reads (the mapping table's test). */
  onRead?: (genericXpath: string) => void;
}

export interface ImportIssue {
  path: string;
  message: string;
}

export interface LibvirtImport {
  definition: Record<string, unknown>;
  /** Changes of meaning (a bridge read as a user NIC) and, with `lenient`, what was not honoured. */
  warnings: ImportIssue[];
  /** What was not honoured (also in `warnings` when lenient). */
  unsupported: ImportIssue[];
  /** Definition field path -> XPath it came from. */
  sources: Map<string, string>;
}

interface Marks {
  read: boolean;
  attrs: Set<string>;
  text: boolean;
}

/** The importer's view of the tree: every read is marked, and checked against the mapping table. */
class Reader {
  private readonly marks = new Map<XmlElement, Marks>();
  readonly unsupported: ImportIssue[] = [];
  readonly warnings: ImportIssue[] = [];

  constructor(private readonly names: ReadonlyMap<XmlElement, string>, private readonly onRead?: (path: string) => void) {}

  private mark(el: XmlElement): Marks {
    let m = this.marks.get(el);
    if (m === undefined) {
      m = { read: false, attrs: new Set(), text: false };
      this.marks.set(el, m);
    }
    return m;
  }

  private noteRead(path: string): void {
    const generic = genericXpath(path);
    if (mappingRow(generic)?.field === undefined) {
      // A programming error: the table is the contract of what the importer reads.
      throw new Error(`libvirt importer reads ${generic}, which the mapping table does not list as honoured`);
    }
    this.onRead?.(generic);
  }

  /** The canonical name (`qemu:arg` whatever prefix the document bound the qemu namespace to). */
  nameOf(el: XmlElement): string {
    return this.names.get(el) ?? el.name;
  }

  use(el: XmlElement): XmlElement {
    this.mark(el).read = true;
    this.noteRead(el.xpath);
    return el;
  }

  child(el: XmlElement, name: string): XmlElement | undefined {
    const found = el.children.find((c) => this.nameOf(c) === name);
    return found === undefined ? undefined : this.use(found);
  }

  all(el: XmlElement, name: string): XmlElement[] {
    return el.children.filter((c) => this.nameOf(c) === name).map((c) => this.use(c));
  }

  /** Children of a name, not yet marked read (the caller decides which it honours). */
  peek(el: XmlElement, name: string): XmlElement[] {
    return el.children.filter((c) => this.nameOf(c) === name);
  }

  attr(el: XmlElement, name: string): string | undefined {
    const value = el.attrs.get(name);
    if (value === undefined) return undefined;
    this.mark(el).attrs.add(name);
    this.noteRead(`${el.xpath}/@${name}`);
    return value;
  }

  text(el: XmlElement): string {
    this.mark(el).text = true;
    return el.text.trim();
  }

  /** Mark an attribute read and report its value as not honoured. */
  refuseValue(el: XmlElement, name: string, reason: string): void {
    const value = this.attr(el, name);
    this.unsupported.push({ path: `${el.xpath}/@${name}`, message: `${quoted(value)} is not supported: ${reason}` });
  }

  /** Mark an element read and report it (and so all it holds) as not honoured. */
  refuseElement(el: XmlElement, reason: string): void {
    this.use(el);
    this.mark(el).text = true;
    this.unsupported.push({ path: el.xpath, message: `not supported: ${reason}` });
    this.swallow(el);
  }

  private swallow(el: XmlElement): void {
    const m = this.mark(el);
    m.read = true;
    m.text = true;
    for (const key of el.attrs.keys()) m.attrs.add(key);
    for (const c of el.children) this.swallow(c);
  }

  /** Mark an element and all it holds read, reporting nothing: runtime state the table says is ignored. */
  ignore(el: XmlElement): void {
    this.use(el);
    this.swallow(el);
  }

  warn(path: string, message: string): void {
    this.warnings.push({ path, message });
  }

  /** Everything left unread, in document order. */
  reportUnread(root: XmlElement): void {
    const visit = (el: XmlElement): void => {
      const m = this.marks.get(el);
      if (m === undefined || !m.read) {
        this.unsupported.push({ path: el.xpath, message: unsupportedReason(el.xpath) });
        return;
      }
      for (const key of el.attrs.keys()) {
        if (key === 'xmlns' || key.startsWith('xmlns:') || m.attrs.has(key)) continue;
        const path = `${el.xpath}/@${key}`;
        this.unsupported.push({ path, message: unsupportedReason(path) });
      }
      if (!m.text && el.text.trim() !== '') this.unsupported.push({ path: `${el.xpath}/text()`, message: 'text here is not read' });
      for (const c of el.children) visit(c);
    };
    visit(root);
  }
}

/** Children of <domain> libvirt allows once; a second would otherwise be reported as merely not honoured. */
const SingleDomainChildren = new Set(['name', 'uuid', 'title', 'description', 'metadata', 'memory', 'currentMemory', 'maxMemory', 'memtune',
  'vcpu', 'vcpus', 'cputune', 'bootloader', 'bootloader_args', 'os', 'features', 'cpu', 'clock', 'on_poweroff', 'on_reboot', 'on_crash', 'devices']);

function refuseRepeatedSingletons(root: XmlElement): void {
  const seen = new Map<string, XmlElement>();
  for (const el of root.children) {
    if (!SingleDomainChildren.has(el.name)) continue;
    const first = seen.get(el.name);
    if (first !== undefined) {
      throw new VirtkitError('definition.invalid', `line ${el.line}, column ${el.column}: ${el.xpath}: <${el.name}> appears twice (first at line ${first.line}, column ${first.column}); libvirt allows one`, { xpath: el.xpath, line: el.line, column: el.column, rule: 'libvirt' });
    }
    seen.set(el.name, el);
  }
}

function invalid(path: string, message: string): VirtkitError {
  return new VirtkitError('definition.invalid', `${path}: ${message}`, { xpath: path, rule: 'libvirt' });
}

/**
 * Namespaces: libvirt's domain has none; the qemu namespace is known; an element in any
 * other is refused, except inside <metadata>, which holds other applications' data by design
 * (and is reported as not kept). Returns each element's canonical name.
 */
function resolveNamespaces(root: XmlElement): Map<XmlElement, string> {
  const names = new Map<XmlElement, string>();
  const walk = (el: XmlElement, scope: ReadonlyMap<string, string>, inMetadata: boolean): void => {
    let own: Map<string, string> | undefined;
    for (const [key, value] of el.attrs) {
      if (key === 'xmlns' && value !== '' && !inMetadata) {
        throw new VirtkitError('definition.xml-refused', `line ${el.line}, column ${el.column}: ${el.xpath}: unknown namespace ${quoted(value)} (libvirt's domain has none; only ${QemuNamespace} is read)`, { xpath: el.xpath, line: el.line, column: el.column, rule: 'namespace' });
      }
      if (key.startsWith('xmlns:')) {
        own ??= new Map(scope);
        own.set(key.slice(6), value);
      }
    }
    const here = own ?? scope;
    const colon = el.name.indexOf(':');
    if (colon !== -1) {
      const prefix = el.name.slice(0, colon);
      const uri = here.get(prefix);
      if (uri === undefined) {
        throw new VirtkitError('definition.invalid', `line ${el.line}, column ${el.column}: ${el.xpath}: namespace prefix "${prefix}" is not declared`, { xpath: el.xpath, line: el.line, column: el.column, rule: 'namespace' });
      }
      if (uri === QemuNamespace && prefix !== 'qemu' && !inMetadata) {
        throw new VirtkitError('definition.xml-refused', `line ${el.line}, column ${el.column}: ${el.xpath}: bind ${QemuNamespace} to the prefix "qemu", as libvirt writes it`, { xpath: el.xpath, line: el.line, column: el.column, rule: 'namespace' });
      }
      if (uri === QemuNamespace) names.set(el, `qemu:${el.name.slice(colon + 1)}`);
      // virtkit's own metadata is read under the prefix it is written with, and only in its namespace.
      else if (prefix === 'virtkit' && uri !== VirtkitNamespace) names.set(el, `other:${el.name.slice(colon + 1)}`);
      else if (!inMetadata) {
        throw new VirtkitError('definition.xml-refused', `line ${el.line}, column ${el.column}: ${el.xpath}: unknown namespace ${quoted(uri)} (only ${QemuNamespace} is read)`, { xpath: el.xpath, line: el.line, column: el.column, rule: 'namespace' });
      }
    }
    const childInMetadata = inMetadata || (el.xpath === '/domain/metadata');
    for (const c of el.children) walk(c, here, childInMetadata);
  };
  walk(root, new Map(), false);
  return names;
}

type Def = Record<string, unknown>;

/** State shared by the section importers. */
interface Ctx {
  r: Reader;
  def: Def;
  sources: Map<string, string>;
}

function set(ctx: Ctx, field: string, value: unknown, from: string): void {
  ctx.def[field] = value;
  ctx.sources.set(field, from);
}

function importDomainAttributes(ctx: Ctx, root: XmlElement): void {
  const { r } = ctx;
  const type = r.attr(root, 'type');
  if (type === 'kvm') set(ctx, 'accel', 'auto', `${root.xpath}/@type`);
  else if (type === 'qemu') set(ctx, 'accel', 'tcg', `${root.xpath}/@type`);
  else if (type !== undefined) r.unsupported.push({ path: `${root.xpath}/@type`, message: `${quoted(type)} is not supported: virtkit runs QEMU (type kvm or qemu)` });
  r.attr(root, 'id');
}

function importIdentity(ctx: Ctx, root: XmlElement): void {
  const { r } = ctx;
  const name = r.child(root, 'name');
  if (name === undefined) throw invalid('/domain/name', 'is required');
  set(ctx, 'name', r.text(name), name.xpath);
  for (const field of ['uuid', 'title', 'description'] as const) {
    const el = r.child(root, field);
    if (el === undefined) continue;
    const value = r.text(el);
    if (field === 'uuid') set(ctx, field, value.toLowerCase(), el.xpath);
    else if (value !== '') set(ctx, field, value, el.xpath);
  }
}

function bytesOf(ctx: Ctx, el: XmlElement): number {
  const text = ctx.r.text(el);
  const unit = ctx.r.attr(el, 'unit');
  try {
    return scaledBytes(text, unit, 'KiB', el.xpath);
  } catch (err) {
    // units.ts knows the XPath; the element knows where it is in the document.
    if (!(err instanceof VirtkitError)) throw err;
    throw new VirtkitError(err.code, `line ${el.line}, column ${el.column}: ${err.message}`, { ...(err.data ?? {}), line: el.line, column: el.column });
  }
}

function importMemory(ctx: Ctx, root: XmlElement): void {
  const { r } = ctx;
  const memory = r.child(root, 'memory');
  if (memory === undefined) throw invalid('/domain/memory', 'is required');
  const bytes = bytesOf(ctx, memory);
  set(ctx, 'memory', bytes, memory.xpath);
  const current = root.children.find((c) => c.name === 'currentMemory');
  if (current !== undefined) {
    r.use(current);
    const currentBytes = bytesOf(ctx, current);
    if (currentBytes !== bytes) {
      r.unsupported.push({ path: current.xpath, message: `differs from <memory> (${currentBytes} against ${bytes} bytes): virtkit boots with all of <memory>; set the balloon with \`virtkit setmem\` once it runs` });
    }
  }
  const memtune = root.children.find((c) => c.name === 'memtune');
  const hard = memtune?.children.find((c) => c.name === 'hard_limit');
  if (memtune !== undefined && hard !== undefined) {
    r.use(memtune);
    r.use(hard);
    set(ctx, 'memory_limit', bytesOf(ctx, hard), hard.xpath);
  }
}

function integerText(ctx: Ctx, el: XmlElement, path = el.xpath): number {
  const text = ctx.r.text(el);
  if (!/^[0-9]{1,9}$/.test(text)) throw invalid(path, `must be a whole number, got ${quoted(text.slice(0, 40))}`);
  return Number(text);
}

function importCpus(ctx: Ctx, root: XmlElement): void {
  const { r } = ctx;
  const vcpu = r.child(root, 'vcpu');
  if (vcpu !== undefined) {
    const count = integerText(ctx, vcpu);
    const current = r.attr(vcpu, 'current');
    if (current !== undefined) {
      if (!/^[0-9]{1,4}$/.test(current)) throw invalid(`${vcpu.xpath}/@current`, `must be a whole number, got ${quoted(current.slice(0, 40))}`);
      set(ctx, 'vcpus', Number(current), `${vcpu.xpath}/@current`);
      if (Number(current) !== count) set(ctx, 'maxvcpus', count, vcpu.xpath);
    } else {
      set(ctx, 'vcpus', count, vcpu.xpath);
    }
    const placement = vcpu.attrs.get('placement');
    if (placement !== undefined && placement !== 'static') r.refuseValue(vcpu, 'placement', 'virtkit pins nothing (placement static)');
    else r.attr(vcpu, 'placement');
  }
  const cputune = root.children.find((c) => c.name === 'cputune');
  if (cputune === undefined) return;
  const shares = cputune.children.find((c) => c.name === 'shares');
  const quota = cputune.children.find((c) => c.name === 'quota');
  if (shares !== undefined || quota !== undefined) r.use(cputune);
  if (shares !== undefined) set(ctx, 'cpu_shares', integerText(ctx, r.use(shares)), shares.xpath);
  if (quota !== undefined) {
    r.use(quota);
    const quotaText = r.text(quota);
    const period = cputune.children.find((c) => c.name === 'period');
    const periodUs = period === undefined ? 100000 : integerText(ctx, r.use(period));
    // libvirt writes -1 (any negative, in older versions) for no limit: cpu_quota absent.
    if (/^-[0-9]{1,20}$/.test(quotaText)) return;
    if (!/^[0-9]{1,12}$/.test(quotaText) || periodUs === 0) {
      r.unsupported.push({ path: quota.xpath, message: `${quoted(quotaText)} is not supported: a positive quota in microseconds per period` });
    } else {
      const percent = (Number(quotaText) * 100) / periodUs;
      if (Number.isInteger(percent)) set(ctx, 'cpu_quota', percent, quota.xpath);
      else r.unsupported.push({ path: quota.xpath, message: `quota/period is ${percent.toFixed(2)}% of a CPU: cpu_quota takes whole percents` });
    }
  }
}

interface BootFacts {
  /** `<boot dev>` order from <os>, first is first. */
  devs: XmlElement[];
  hasKernel: boolean;
}

function importOs(ctx: Ctx, root: XmlElement): BootFacts {
  const { r } = ctx;
  const facts: BootFacts = { devs: [], hasKernel: false };
  const bootloader = r.child(root, 'bootloader');
  const os = r.child(root, 'os');
  if (os === undefined) {
    if (bootloader !== undefined) {
      r.text(bootloader);
      set(ctx, 'boot', { loader: 'guest' }, bootloader.xpath);
    }
    return facts;
  }
  const firmware = r.attr(os, 'firmware');
  if (firmware === 'efi') set(ctx, 'firmware', 'uefi', `${os.xpath}/@firmware`);
  else if (firmware === 'bios') set(ctx, 'firmware', 'bios', `${os.xpath}/@firmware`);
  else if (firmware !== undefined) r.refuseValue(os, 'firmware', 'efi or bios');
  const type = r.child(os, 'type');
  if (type !== undefined) {
    const kind = r.text(type);
    if (kind !== 'hvm') r.unsupported.push({ path: `${type.xpath}/text()`, message: `${quoted(kind)} is not supported: hvm only` });
    const arch = type.attrs.get('arch');
    if (arch !== undefined && arch !== 'x86_64') r.refuseValue(type, 'arch', 'virtkit runs qemu-system-x86_64');
    else r.attr(type, 'arch');
    const machine = r.attr(type, 'machine');
    if (machine !== undefined) set(ctx, 'machine', machine, `${type.xpath}/@machine`);
  }
  const kernel = r.child(os, 'kernel');
  if (kernel !== undefined) {
    facts.hasKernel = true;
    const boot: Def = { loader: 'direct', kernel: r.text(kernel) };
    const initrd = r.child(os, 'initrd');
    if (initrd !== undefined) boot['initrd'] = r.text(initrd);
    const cmdline = r.child(os, 'cmdline');
    if (cmdline !== undefined) boot['cmdline'] = r.text(cmdline);
    set(ctx, 'boot', boot, kernel.xpath);
  } else if (bootloader !== undefined) {
    r.text(bootloader);
    set(ctx, 'boot', { loader: 'guest' }, bootloader.xpath);
  }
  for (const boot of r.all(os, 'boot')) {
    const dev = r.attr(boot, 'dev');
    if (dev === 'hd') facts.devs.push(boot);
    else r.unsupported.push({ path: `${boot.xpath}/@dev`, message: `${quoted(dev)} is not supported: virtkit boots from disks (hd) or a kernel` });
  }
  const loader = r.child(os, 'loader');
  if (loader !== undefined) {
    const path = r.text(loader);
    const type = r.attr(loader, 'type');
    r.attr(loader, 'readonly');
    const secure = loader.attrs.get('secure');
    if (secure !== undefined && secure !== 'no') r.refuseValue(loader, 'secure', 'Secure Boot is not supported');
    else r.attr(loader, 'secure');
    const uefi = type === 'pflash' || /ovmf|edk2|uefi/i.test(path);
    set(ctx, 'firmware', uefi ? 'uefi' : 'bios', loader.xpath);
    if (uefi && path !== '' && !path.includes('OVMF_CODE_4M')) {
      r.warn(loader.xpath, `firmware ${path} is not used: virtkit boots UEFI guests with Debian's OVMF_CODE_4M.fd`);
    }
  }
  // Firmware features (virt-install writes them): what virtkit's OVMF does is asked for; anything else is not honoured.
  const features = r.child(os, 'firmware');
  for (const feature of features === undefined ? [] : r.all(features, 'feature')) {
    const name = r.attr(feature, 'name');
    const enabled = feature.attrs.get('enabled');
    if ((name === 'secure-boot' || name === 'enrolled-keys') && enabled === 'no') r.attr(feature, 'enabled');
    else r.refuseValue(feature, 'enabled', `${quoted(name)} enabled: virtkit's OVMF has no Secure Boot and no enrolled keys`);
  }
  const nvram = r.child(os, 'nvram');
  if (nvram !== undefined) {
    r.text(nvram);
    r.attr(nvram, 'template');
    r.warn(nvram.xpath, 'the variable store is not used: virtkit keeps a fresh one of its own for the domain');
  }
  return facts;
}

function importFeaturesCpuClock(ctx: Ctx, root: XmlElement): void {
  const { r } = ctx;
  const features = r.child(root, 'features');
  const acpi = features === undefined ? undefined : r.child(features, 'acpi');
  if (features !== undefined) {
    r.child(features, 'apic');
    r.child(features, 'pae');
  }
  if (acpi === undefined) r.warn('/domain/features/acpi', 'absent, but virtkit gives every guest ACPI (its clean shutdown is the ACPI power button)');

  const cpu = r.child(root, 'cpu');
  if (cpu !== undefined) {
    const mode = r.attr(cpu, 'mode') ?? 'custom';
    const match = cpu.attrs.get('match');
    if (match !== undefined && match !== 'exact') r.refuseValue(cpu, 'match', 'exact only');
    else r.attr(cpu, 'match');
    const check = cpu.attrs.get('check');
    if (check !== undefined && check !== 'none' && check !== 'partial') r.refuseValue(cpu, 'check', 'virtkit checks no CPU features');
    else r.attr(cpu, 'check');
    const migratable = cpu.attrs.get('migratable');
    if (migratable !== undefined && migratable !== 'on') r.refuseValue(cpu, 'migratable', 'on only');
    else r.attr(cpu, 'migratable');
    const model = r.child(cpu, 'model');
    if (model !== undefined && r.attr(model, 'fallback') === 'allow') {
      r.warn(`${model.xpath}/@fallback`, 'allow is not kept: QEMU refuses a CPU model it does not know rather than fall back to another (virtkit writes forbid)');
    }
    if (mode === 'host-passthrough') set(ctx, 'cpu', 'host', `${cpu.xpath}/@mode`);
    else if (mode === 'host-model') r.warn(`${cpu.xpath}/@mode`, 'host-model: virtkit uses the accelerator\'s default CPU (host under KVM, qemu64 under TCG)');
    else if (mode === 'custom') {
      // A custom CPU without a model only sets what follows (topology...): the model stays the default.
      if (model !== undefined) set(ctx, 'cpu', r.text(model), model.xpath);
    } else {
      r.unsupported.push({ path: `${cpu.xpath}/@mode`, message: `${quoted(mode)} is not supported: host-passthrough, host-model or custom` });
    }
  }

  const clock = r.child(root, 'clock');
  if (clock !== undefined) {
    const offset = clock.attrs.get('offset');
    if (offset !== undefined && offset !== 'utc') r.refuseValue(clock, 'offset', 'the RTC runs in UTC');
    else r.attr(clock, 'offset');
  }

  for (const event of ['on_poweroff', 'on_reboot', 'on_crash'] as const) {
    const el = r.child(root, event);
    if (el === undefined) continue;
    const action = r.text(el);
    if (action === 'destroy' || action === 'restart' || action === 'preserve') set(ctx, event, action, el.xpath);
    else r.unsupported.push({ path: `${el.xpath}/text()`, message: `${quoted(action)} is not supported: destroy, restart or preserve` });
  }
}

const BusOfPrefix: Readonly<Record<string, string>> = { vd: 'virtio', sd: 'scsi', hd: 'ide' };

interface DiskImport {
  disks: Def[];
  /** Lowest `<boot order>` and its disk id. */
  bootOrder?: { order: number; id: string; xpath: string };
  orders: Array<{ order: number; id: string; xpath: string }>;
}

function importDisk(ctx: Ctx, el: XmlElement, index: number, out: DiskImport, targets: Map<string, string>): void {
  const { r } = ctx;
  const device = el.attrs.get('device') ?? 'disk';
  if (device !== 'disk') {
    r.refuseElement(el, `device ${quoted(device)}: disks only (no cdrom, floppy or lun)`);
    return;
  }
  const declaredBus = el.children.find((c) => c.name === 'target')?.attrs.get('bus');
  if (declaredBus !== undefined && !['virtio', 'ide', 'scsi', 'sata'].includes(declaredBus)) {
    r.refuseElement(el, `bus ${quoted(declaredBus)}: virtio, scsi, ide or sata (as ide)`);
    return;
  }
  r.attr(el, 'device');
  const disk: Def = {};
  const path = `disks[${index}]`;
  ctx.sources.set(path, el.xpath);
  const type = el.attrs.get('type') ?? 'file';
  if (type !== 'file' && type !== 'block' && type !== 'volume') {
    r.refuseElement(el, `type ${quoted(type)}: file, block or volume disks only`);
    return;
  }
  r.attr(el, 'type');
  const source = r.child(el, 'source');
  if (type === 'file' || type === 'block') {
    const file = source === undefined ? undefined : r.attr(source, type === 'file' ? 'file' : 'dev');
    if (file === undefined) throw invalid(`${el.xpath}/source/@${type === 'file' ? 'file' : 'dev'}`, 'is required: virtkit has no empty drives');
    disk['source'] = file;
  } else if (type === 'volume') {
    const pool = source === undefined ? undefined : r.attr(source, 'pool');
    const volume = source === undefined ? undefined : r.attr(source, 'volume');
    if (pool === undefined || volume === undefined) throw invalid(`${el.xpath}/source`, 'needs pool and volume attributes for a volume disk');
    disk['volume'] = `${pool}/${volume}`;
  }
  const driver = r.child(el, 'driver');
  if (driver !== undefined) {
    const name = driver.attrs.get('name');
    if (name !== undefined && name !== 'qemu') r.refuseValue(driver, 'name', 'qemu only');
    else r.attr(driver, 'name');
    const format = r.attr(driver, 'type');
    if (format !== undefined) disk['format'] = format;
    const cache = r.attr(driver, 'cache');
    if (cache !== undefined) disk['cache'] = cache === 'default' ? 'writeback' : cache;
  }
  if (disk['format'] === undefined) throw invalid(`${el.xpath}/driver/@type`, 'is required: virtkit never guesses an image format (raw or qcow2)');
  const target = r.child(el, 'target');
  const written = target === undefined ? undefined : r.attr(target, 'dev');
  if (target === undefined || written === undefined) throw invalid(`${el.xpath}/target/@dev`, 'is required');
  // libvirt's sata is an AHCI disk: virtkit's ide bus, which is AHCI on q35 (and PIIX IDE on pc).
  const sata = target.attrs.get('bus') === 'sata';
  const dev = sata && /^sd[a-z]{1,2}$/.test(written) ? `hd${written.slice(2)}` : written;
  if (sata) r.warn(`${target.xpath}/@bus`, `sata disk ${written} attached as ${dev} on virtkit's ide bus (AHCI on q35, IDE on pc); the guest sees the same kind of disk`);
  const earlier = targets.get(dev);
  if (earlier !== undefined) throw invalid(`${target.xpath}/@dev`, `duplicate target ${quoted(dev)}: ${earlier} has it already`);
  targets.set(dev, target.xpath);
  disk['target'] = dev;
  disk['id'] = dev;
  const bus = sata ? 'ide' : target.attrs.get('bus') ?? BusOfPrefix[dev.slice(0, 2)];
  r.attr(target, 'bus');
  if (bus !== undefined) disk['bus'] = bus;
  if (r.child(el, 'readonly') !== undefined) disk['readonly'] = true;
  if (r.child(el, 'shareable') !== undefined) disk['shareable'] = true;
  for (const alias of r.all(el, 'alias')) r.attr(alias, 'name');
  for (const backing of r.peek(el, 'backingStore')) r.ignore(backing);
  const boot = r.child(el, 'boot');
  if (boot !== undefined) {
    const orderText = r.attr(boot, 'order') ?? '';
    if (!/^[0-9]{1,4}$/.test(orderText)) throw invalid(`${boot.xpath}/@order`, `must be a whole number, got ${quoted(orderText.slice(0, 40))}`);
    const order = Number(orderText);
    out.orders.push({ order, id: dev, xpath: boot.xpath });
    if (out.bootOrder === undefined || order < out.bootOrder.order) out.bootOrder = { order, id: dev, xpath: boot.xpath };
  }
  out.disks.push(disk);
}

function importInterface(ctx: Ctx, el: XmlElement, index: number, macs: Map<string, string>): Def | undefined {
  const { r } = ctx;
  const type = el.attrs.get('type');
  const path = `nics[${index}]`;
  if (type !== 'user' && type !== 'network' && type !== 'bridge') {
    r.refuseElement(el, `type ${quoted(type)}: user, network or bridge interfaces only`);
    return undefined;
  }
  r.attr(el, 'type');
  ctx.sources.set(path, el.xpath);
  const nic: Def = { network: 'user' };
  const source = r.child(el, 'source');
  if (type !== 'user') {
    // A libvirt network or host bridge becomes the virtkit network of that name (docs/networks.md).
    const named = source === undefined ? undefined : r.attr(source, type);
    if (named === undefined) throw invalid(`${el.xpath}/source/@${type}`, `is required for an interface of type ${type}`);
    nic['network'] = named;
    ctx.sources.set(`${path}.network`, `${source?.xpath ?? el.xpath}/@${type}`);
    if (type === 'bridge') {
      r.warn(el.xpath, `bridge ${quoted(named)} became network: ${quoted(named)}: define a virtkit network of that name with mode: bridge and bridge: ${quoted(named)} (virtkit net-define) before the guest starts`);
    }
  }
  const mac = r.child(el, 'mac');
  const address = mac === undefined ? undefined : r.attr(mac, 'address');
  if (mac !== undefined && address !== undefined) {
    const lower = address.toLowerCase();
    const earlier = macs.get(lower);
    if (earlier !== undefined) throw invalid(`${mac.xpath}/@address`, `duplicate MAC ${lower}: ${earlier} has it already`);
    macs.set(lower, mac.xpath);
    nic['mac'] = lower;
    ctx.sources.set(`${path}.mac`, `${mac.xpath}/@address`);
  }
  const model = r.child(el, 'model');
  const modelType = model === undefined ? undefined : r.attr(model, 'type');
  if (modelType !== undefined) {
    nic['model'] = modelType;
    ctx.sources.set(`${path}.model`, `${model?.xpath ?? el.xpath}/@type`);
  }
  for (const alias of r.all(el, 'alias')) r.attr(alias, 'name');
  for (const target of r.all(el, 'target')) r.attr(target, 'dev');
  return nic;
}

/** The first serial port and the console on it: virtkit's one serial console. */
function importSerial(ctx: Ctx, devices: XmlElement): void {
  const { r } = ctx;
  let found: string | undefined;
  const readTarget = (el: XmlElement, kind: 'serial' | 'console'): boolean => {
    const type = el.attrs.get('type') ?? 'pty';
    const targetEl = el.children.find((c) => c.name === 'target');
    const port = targetEl?.attrs.get('port') ?? '0';
    const targetType = targetEl?.attrs.get('type');
    const wanted = kind === 'console' ? 'serial' : 'isa-serial';
    const refusal = type !== 'pty' ? `type ${quoted(type)}: pty only (virtkit's console socket serves it)`
      : targetType !== undefined && targetType !== wanted ? `target type ${quoted(targetType)}: ${wanted} only`
        : port !== '0' ? `port ${port}: virtkit has one serial port (ttyS0)` : undefined;
    if (refusal !== undefined) {
      r.refuseElement(el, refusal);
      return false;
    }
    r.attr(el, 'type');
    const target = r.child(el, 'target');
    if (target !== undefined) {
      r.attr(target, 'port');
      r.attr(target, 'type');
      const model = r.child(target, 'model');
      if (model !== undefined) {
        const name = r.attr(model, 'name');
        if (name !== 'isa-serial') r.unsupported.push({ path: `${model.xpath}/@name`, message: `${quoted(name)} is not supported: isa-serial only` });
      }
    }
    const source = r.child(el, 'source');
    if (source !== undefined) r.attr(source, 'path');
    if (kind === 'console') r.attr(el, 'tty');
    for (const alias of r.all(el, 'alias')) r.attr(alias, 'name');
    return true;
  };
  for (const serial of r.all(devices, 'serial')) if (readTarget(serial, 'serial')) found ??= serial.xpath;
  for (const console of r.all(devices, 'console')) if (readTarget(console, 'console')) found ??= console.xpath;
  set(ctx, 'serial', found !== undefined, found ?? '/domain/devices');
}

function importGraphicsVideo(ctx: Ctx, devices: XmlElement): void {
  const { r } = ctx;
  const graphics = r.peek(devices, 'graphics');
  graphics.forEach((el, i) => {
    const type = el.attrs.get('type');
    if (type !== 'vnc' || i > 0) {
      r.refuseElement(el, i > 0 ? 'one display only' : `type ${quoted(type)}: VNC only`);
      return;
    }
    r.use(el);
    r.attr(el, 'type');
    set(ctx, 'graphics', 'vnc', el.xpath);
    if (r.attr(el, 'passwd') !== undefined) {
      set(ctx, 'vnc_password', true, `${el.xpath}/@passwd`);
      r.warn(`${el.xpath}/@passwd`, 'the password itself is not kept: the guest asks for one (vnc_password: true); set it with `virtkit vncdisplay NAME --password` once it runs');
    }
    let tcp = false;
    for (const attr of ['port', 'autoport', 'listen', 'socket'] as const) {
      const value = r.attr(el, attr);
      if ((attr === 'port' && value !== undefined && value !== '-1') || (attr === 'listen' && value !== undefined)) tcp = true;
    }
    for (const listen of r.all(el, 'listen')) {
      const kind = r.attr(listen, 'type');
      r.attr(listen, 'address');
      r.attr(listen, 'socket');
      if (kind !== 'socket' && kind !== 'none') tcp = true;
    }
    if (tcp || el.attrs.get('autoport') === 'yes') r.warn(el.xpath, 'VNC is served on the run directory\'s vnc.sock (virtkit vncdisplay), not on a TCP port');
  });
  const videos = r.peek(devices, 'video');
  videos.forEach((el, i) => {
    const model = el.children.find((c) => c.name === 'model');
    const type = model?.attrs.get('type');
    if (i > 0 || model === undefined || (type !== 'vga' && type !== 'bochs' && type !== 'virtio' && type !== 'none')) {
      r.refuseElement(el, i > 0 ? 'one video card only' : `model ${quoted(type)}: vga, bochs, virtio or none`);
      return;
    }
    r.use(el);
    r.use(model);
    r.attr(model, 'type');
    r.attr(model, 'vram');
    r.attr(model, 'primary');
    const heads = model.attrs.get('heads');
    if (heads !== undefined && heads !== '1') r.refuseValue(model, 'heads', 'one head');
    else r.attr(model, 'heads');
    for (const alias of r.all(el, 'alias')) r.attr(alias, 'name');
    set(ctx, 'video', type, el.xpath);
  });
}

function importControllers(ctx: Ctx, devices: XmlElement): boolean {
  const { r } = ctx;
  let scsi = false;
  for (const el of r.peek(devices, 'controller')) {
    const type = el.attrs.get('type');
    const model = el.attrs.get('model');
    const index = el.attrs.get('index') ?? '0';
    const builtin = (type === 'pci' && (model === 'pci-root' || model === 'pcie-root'))
      || (type === 'ide' && model === undefined) || (type === 'sata' && model === undefined) || (type === 'usb' && model === 'none');
    const isScsi = type === 'scsi' && (model === undefined || model === 'virtio-scsi');
    if ((!builtin && !isScsi) || index !== '0') {
      r.refuseElement(el, `a ${type ?? 'untyped'} controller${model === undefined ? '' : ` of model ${model}`} (index ${index}): virtkit adds only the virtio-scsi controller scsi0 to the machine's own`);
      continue;
    }
    r.use(el);
    r.attr(el, 'type');
    r.attr(el, 'model');
    r.attr(el, 'index');
    for (const alias of r.all(el, 'alias')) r.attr(alias, 'name');
    if (isScsi) {
      scsi = true;
      ctx.sources.set('controllers.scsi', el.xpath);
    }
  }
  return scsi;
}

function importFilesystems(ctx: Ctx, devices: XmlElement): void {
  const { r } = ctx;
  const out: Def[] = [];
  for (const el of r.all(devices, 'filesystem')) {
    const type = el.attrs.get('type') ?? 'mount';
    const mode = el.attrs.get('accessmode') ?? 'passthrough';
    if (type !== 'mount' || mode !== 'passthrough') {
      r.refuseElement(el, `type ${quoted(type)} with accessmode ${quoted(mode)}: passthrough mounts only`);
      continue;
    }
    r.attr(el, 'type');
    r.attr(el, 'accessmode');
    const fs: Def = {};
    ctx.sources.set(`filesystems[${out.length}]`, el.xpath);
    const driver = r.child(el, 'driver');
    const driverType = driver === undefined ? undefined : r.attr(driver, 'type');
    if (driverType === 'virtiofs') fs['driver'] = 'virtiofs';
    else if (driverType === 'path') fs['driver'] = '9p';
    else if (driverType !== undefined && driver !== undefined) r.unsupported.push({ path: `${driver.xpath}/@type`, message: `${quoted(driverType)} is not supported: virtiofs or path (9p)` });
    const source = r.child(el, 'source');
    const dir = source === undefined ? undefined : r.attr(source, 'dir');
    if (dir === undefined) throw invalid(`${el.xpath}/source/@dir`, 'is required');
    fs['source'] = dir;
    const target = r.child(el, 'target');
    const tag = target === undefined ? undefined : r.attr(target, 'dir');
    if (tag === undefined) throw invalid(`${el.xpath}/target/@dir`, 'is required');
    fs['target'] = tag;
    if (r.child(el, 'readonly') !== undefined) fs['readonly'] = true;
    out.push(fs);
  }
  if (out.length > 0) set(ctx, 'filesystems', out, '/domain/devices/filesystem');
}

function importDevices(ctx: Ctx, root: XmlElement, facts: BootFacts): void {
  const { r } = ctx;
  const devices = r.child(root, 'devices');
  const diskImport: DiskImport = { disks: [], orders: [] };
  const nics: Def[] = [];
  if (devices !== undefined) {
    const emulator = devices.children.find((c) => c.name === 'emulator');
    if (emulator !== undefined) {
      const path = emulator.text.trim();
      if (/(^|\/)(qemu-system-x86_64|qemu-kvm|kvm)$/.test(path)) r.text(r.use(emulator));
      else r.refuseElement(emulator, `${quoted(path)} is not a qemu-system-x86_64: virtkit runs the host's own`);
    }
    const targets = new Map<string, string>();
    r.all(devices, 'disk').forEach((el) => importDisk(ctx, el, diskImport.disks.length, diskImport, targets));
    const macs = new Map<string, string>();
    for (const el of r.all(devices, 'interface')) {
      const nic = importInterface(ctx, el, nics.length, macs);
      if (nic !== undefined) nics.push(nic);
    }
    const scsiController = importControllers(ctx, devices);
    const scsiDisk = diskImport.disks.some((d) => d['bus'] === 'scsi');
    set(ctx, 'controllers', { scsi: scsiController || scsiDisk ? 'auto' : 'none' }, ctx.sources.get('controllers.scsi') ?? '/domain/devices');
    importSerial(ctx, devices);
    for (const input of r.peek(devices, 'input')) {
      const type = input.attrs.get('type');
      const bus = input.attrs.get('bus') ?? 'ps2';
      if ((type === 'mouse' || type === 'keyboard') && bus === 'ps2') {
        r.use(input);
        r.attr(input, 'type');
        r.attr(input, 'bus');
        for (const alias of r.all(input, 'alias')) r.attr(alias, 'name');
      } else {
        r.refuseElement(input, `a ${type ?? 'untyped'} input on ${bus}: the machine's PS/2 mouse and keyboard only`);
      }
    }
    importGraphicsVideo(ctx, devices);
    const balloons = r.all(devices, 'memballoon');
    for (const [i, el] of balloons.entries()) {
      const model = el.attrs.get('model');
      if (i > 0 || (model !== 'virtio' && model !== 'none')) {
        r.refuseElement(el, i > 0 ? 'one balloon only' : `model ${quoted(model)}: virtio or none`);
        continue;
      }
      r.attr(el, 'model');
      set(ctx, 'balloon', model === 'virtio', el.xpath);
      const stats = r.child(el, 'stats');
      if (stats !== undefined) r.attr(stats, 'period');
      for (const alias of r.all(el, 'alias')) r.attr(alias, 'name');
    }
    importFilesystems(ctx, devices);
    for (const panic of r.peek(devices, 'panic')) {
      const model = panic.attrs.get('model') ?? 'isa';
      if (model === 'isa') r.attr(r.use(panic), 'model');
      else r.refuseElement(panic, `model ${quoted(model)}: virtkit's pvpanic is isa`);
    }
  } else {
    set(ctx, 'serial', false, '/domain');
    set(ctx, 'controllers', { scsi: 'none' }, '/domain');
  }
  // No <memballoon>: libvirt adds a virtio balloon unless told model='none', as virtkit's default does.
  if (diskImport.disks.length > 0) set(ctx, 'disks', diskImport.disks, '/domain/devices/disk');
  if (nics.length > 0) set(ctx, 'nics', nics, '/domain/devices/interface');
  if (!facts.hasKernel && ctx.def['boot'] === undefined) {
    if (diskImport.bootOrder !== undefined) {
      if (facts.devs.length > 0) throw invalid(facts.devs[0]?.xpath ?? '/domain/os/boot', 'per-device <boot order> and <os><boot dev> exclude each other (as in libvirt)');
      const first = diskImport.bootOrder;
      set(ctx, 'boot', { loader: 'disk', disk: first.id }, first.xpath);
      for (const other of diskImport.orders.filter((o) => o !== first && o.xpath !== first.xpath)) {
        r.warn(`${other.xpath}/@order`, `order ${other.order} is not kept: virtkit boots ${first.id} first, then the firmware's own order`);
      }
    } else {
      set(ctx, 'boot', { loader: 'disk' }, facts.devs[0]?.xpath ?? '/domain/os');
    }
  }
}

/**
 * virtkit's `<metadata>` (metadata.ts): what libvirt XML has no element for, written by
 * `dumpxml`. Read after the devices, whose NICs and disks it completes.
 */
function importMetadata(ctx: Ctx, root: XmlElement): void {
  const { r } = ctx;
  const metadata = root.children.find((c) => c.name === 'metadata');
  const ours = metadata === undefined ? undefined : metadata.children.find((c) => r.nameOf(c) === VirtkitElements.definition);
  // Without virtkit's element, <metadata> stays unread and is reported as not kept.
  if (metadata === undefined || ours === undefined) return;
  r.use(metadata);
  r.use(ours);
  const nics = (ctx.def['nics'] ?? []) as Def[];
  for (const el of r.all(ours, VirtkitElements.hostfwd)) {
    const mac = (r.attr(el, 'nic') ?? '').toLowerCase();
    const rule = r.attr(el, 'rule');
    const nic = nics.find((n) => String(n['mac']).toLowerCase() === mac);
    if (nic === undefined) throw invalid(`${el.xpath}/@nic`, `names no <interface> of this domain, got ${quoted(mac)}`);
    if (rule === undefined) throw invalid(`${el.xpath}/@rule`, 'is required');
    nic['hostfwd'] = [...((nic['hostfwd'] ?? []) as string[]), rule];
  }
  const bootEl = r.child(ours, VirtkitElements.boot);
  const boot = ctx.def['boot'] as Def | undefined;
  if (bootEl !== undefined) {
    if (boot?.['loader'] !== 'guest') throw invalid(bootEl.xpath, 'needs a <bootloader> (a guest loader)');
    const index = r.attr(bootEl, 'entry-index');
    if (index !== undefined) {
      if (!/^[0-9]{1,3}$/.test(index)) throw invalid(`${bootEl.xpath}/@entry-index`, `must be a whole number, got ${quoted(index.slice(0, 40))}`);
      boot['entry'] = Number(index);
    }
    for (const key of ['entry', 'kernel', 'initrd', 'cmdline'] as const) {
      const value = r.attr(bootEl, key);
      if (value !== undefined) boot[key] = value;
    }
  }
  const disks = (ctx.def['disks'] ?? []) as Def[];
  for (const el of r.all(ours, VirtkitElements.disk)) {
    const target = r.attr(el, 'target');
    const id = r.attr(el, 'id');
    const disk = disks.find((d) => d['target'] === target);
    if (disk === undefined || id === undefined) throw invalid(el.xpath, `needs the target of a <disk> of this domain and an id, got ${quoted(target)}`);
    if (boot?.['loader'] === 'disk' && boot['disk'] === disk['id']) boot['disk'] = id;
    disk['id'] = id;
  }
  const shutdown = r.child(ours, VirtkitElements.hostShutdown);
  if (shutdown !== undefined) {
    const action = r.attr(shutdown, 'action');
    const timeout = r.attr(shutdown, 'timeout');
    if (action !== undefined) set(ctx, 'on_host_shutdown', action, `${shutdown.xpath}/@action`);
    if (timeout !== undefined) {
      if (!/^[0-9]{1,6}$/.test(timeout)) throw invalid(`${shutdown.xpath}/@timeout`, `must be a whole number of seconds, got ${quoted(timeout.slice(0, 40))}`);
      set(ctx, 'shutdown_timeout', Number(timeout), `${shutdown.xpath}/@timeout`);
    }
  }
  const vnc = r.child(ours, VirtkitElements.vnc);
  if (vnc !== undefined) {
    const password = r.attr(vnc, 'password');
    if (password !== 'required') throw invalid(`${vnc.xpath}/@password`, `must be "required", got ${quoted(password)}`);
    set(ctx, 'vnc_password', true, `${vnc.xpath}/@password`);
  }
}

function importQemuCommandline(ctx: Ctx, root: XmlElement): void {
  const { r } = ctx;
  const blocks = root.children.filter((c) => r.nameOf(c) === 'qemu:commandline');
  if (blocks.length === 0) return;
  const args: string[] = [];
  const env: Record<string, string> = {};
  const envFrom = new Map<string, string>();
  for (const block of blocks) {
    r.use(block);
    for (const arg of r.all(block, 'qemu:arg')) {
      const value = r.attr(arg, 'value');
      if (value === undefined) throw invalid(`${arg.xpath}/@value`, 'is required');
      args.push(value);
    }
    for (const variable of r.all(block, 'qemu:env')) {
      const name = r.attr(variable, 'name');
      if (name === undefined) throw invalid(`${variable.xpath}/@name`, 'is required');
      const earlier = envFrom.get(name);
      if (earlier !== undefined) throw invalid(`${variable.xpath}/@name`, `duplicate variable ${quoted(name)}: ${earlier} sets it already`);
      envFrom.set(name, variable.xpath);
      env[name] = r.attr(variable, 'value') ?? '';
    }
  }
  set(ctx, 'qemu', { args, env }, blocks[0]?.xpath ?? '/domain');
}

/** Issues sorted as their elements appear in the document (an element before its attributes and text). */
function inDocumentOrder(root: XmlElement, issues: readonly ImportIssue[]): ImportIssue[] {
  const order = new Map<string, number>();
  const walk = (el: XmlElement): void => {
    order.set(el.xpath, order.size);
    for (const c of el.children) walk(c);
  };
  walk(root);
  const key = (path: string): number => {
    const element = path.replace(/\/(@[^/]*|text\(\))$/, '');
    return (order.get(element) ?? order.size) * 2 + (element === path ? 0 : 1);
  };
  return issues.map((issue, i) => ({ issue, i, k: key(issue.path) }))
    .sort((a, b) => a.k - b.k || a.i - b.i)
    .map((x) => x.issue);
}

/**
 * Import a libvirt domain XML document.
 * @throws VirtkitError('definition.xml-refused') for DTDs, entities, unknown namespaces, size and depth,
 *         VirtkitError('definition.invalid') for malformed XML and values that make no sense,
 *         VirtkitError('definition.unsupported') listing what cannot be honoured (unless `lenient`).
 */
export function importLibvirtXml(text: string, options: ImportOptions = {}): LibvirtImport {
  const root = readXml(text);
  if (root.name !== 'domain') {
    throw new VirtkitError('definition.invalid', `${root.xpath}: the root element must be <domain>, got <${root.name}>`, { xpath: root.xpath, rule: 'libvirt' });
  }
  refuseRepeatedSingletons(root);
  const names = resolveNamespaces(root);
  const r = new Reader(names, options.onRead);
  const ctx: Ctx = { r, def: {}, sources: new Map() };
  r.use(root);
  importDomainAttributes(ctx, root);
  importIdentity(ctx, root);
  importMemory(ctx, root);
  importCpus(ctx, root);
  const facts = importOs(ctx, root);
  importFeaturesCpuClock(ctx, root);
  importDevices(ctx, root, facts);
  importMetadata(ctx, root);
  importQemuCommandline(ctx, root);
  r.reportUnread(root);

  const unsupported = inDocumentOrder(root, r.unsupported);
  if (unsupported.length > 0 && options.lenient !== true) {
    const shown = unsupported.slice(0, MaxListedInMessage).map((u) => `  ${u.path}: ${u.message}`);
    if (unsupported.length > MaxListedInMessage) shown.push(`  ... and ${unsupported.length - MaxListedInMessage} more (all in data.unsupported)`);
    const list = shown.join('\n');
    throw new VirtkitError('definition.unsupported', `${unsupported.length} element(s) or attribute(s) cannot be honoured (--lenient imports anyway and keeps this list in notes):\n${list}`, {
      unsupported: unsupported.map((u) => ({ xpath: u.path, reason: u.message })),
    });
  }
  const warnings = [...r.warnings, ...unsupported];
  if (warnings.length > 0) {
    const notes = warnings.slice(0, MaxNotes - 1).map((w) => `${w.path}: ${w.message}`);
    if (warnings.length >= MaxNotes) notes.push(`... and ${warnings.length - MaxNotes + 1} more not honoured`);
    ctx.def['notes'] = notes;
  }
  return { definition: ctx.def, warnings, unsupported, sources: ctx.sources };
}
