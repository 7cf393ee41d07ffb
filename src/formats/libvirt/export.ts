/**
 * Definition -> libvirt domain XML that libvirt accepts (checked against its RelaxNG schema
 * with virt-xml-validate in the tests). Everything written here is read back by import.ts to
 * the same definition; what libvirt XML cannot say (port forwards, a guest loader's menu
 * entry, the notes) is written as XML comments, so nothing is lost without a word.
 */
import type { DomainDefinition } from '../../conf/index.js';
import { QemuNamespace } from './import.js';
import { VirtkitNamespace } from './metadata.js';
import { exactUnit } from './units.js';
import { codePointName, firstNonXmlChar } from './xml-chars.js';
import { VirtkitError } from '../../util/errors.js';
import { escapeForTerminal } from '../../util/terminal-text.js';

/** Fields added to the schema by features that may not be in every build's type yet. */
interface OptionalFields {
  title?: string;
  description?: string;
  notes?: string[];
  maxvcpus?: number;
  balloon?: boolean;
  video?: string;
  firmware?: string;
  filesystems?: Array<{ source: string; target: string; readonly?: boolean; driver?: string }>;
  cpu_shares?: number;
  cpu_quota?: number;
  memory_limit?: number;
}

function escapeText(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function escapeAttr(text: string): string {
  return escapeText(text).replace(/'/g, '&apos;').replace(/"/g, '&quot;').replace(/\n/g, '&#10;').replace(/\r/g, '&#13;').replace(/\t/g, '&#9;');
}

/** A comment may not contain "--" nor end in "-". */
function comment(text: string): string {
  return `<!-- ${text.replace(/-(?=-)/g, '- ').replace(/-$/, '- ')} -->`;
}

type Attrs = ReadonlyArray<readonly [string, string | number | undefined]>;

function open(name: string, attrs: Attrs = []): string {
  const parts = attrs.filter(([, v]) => v !== undefined).map(([k, v]) => ` ${k}='${escapeAttr(String(v))}'`);
  return `<${name}${parts.join('')}`;
}

function empty(name: string, attrs: Attrs = []): string {
  return `${open(name, attrs)}/>`;
}

function textElement(name: string, text: string | number, attrs: Attrs = []): string {
  return `${open(name, attrs)}>${escapeText(String(text))}</${name}>`;
}

class Lines {
  readonly out: string[] = [];
  constructor(private depth = 0) {}
  add(line: string): void {
    this.out.push(`${'  '.repeat(this.depth)}${line}`);
  }
  block(openTag: string, name: string, body: () => void): void {
    this.add(`${openTag}>`);
    this.depth += 1;
    body();
    this.depth -= 1;
    this.add(`</${name}>`);
  }
}

function memoryElement(name: string, bytes: number): string {
  const { value, unit } = exactUnit(bytes);
  return textElement(name, value, [['unit', unit]]);
}

function exportOs(x: Lines, def: DomainDefinition, extra: OptionalFields): void {
  const firmware = extra.firmware === 'uefi' ? 'efi' : undefined;
  x.block(open('os', [['firmware', firmware]]), 'os', () => {
    x.add(textElement('type', 'hvm', [['arch', 'x86_64'], ['machine', def.machine]]));
    const boot = def.boot;
    if (boot.loader === 'direct') {
      x.add(textElement('kernel', boot.kernel));
      if (boot.initrd !== undefined) x.add(textElement('initrd', boot.initrd));
      if (boot.cmdline !== undefined) x.add(textElement('cmdline', boot.cmdline));
    } else if (boot.loader === 'disk' && boot.disk === undefined) {
      x.add(empty('boot', [['dev', 'hd']]));
    }
  });
}

function exportCpu(x: Lines, def: DomainDefinition): void {
  if (def.cpu === undefined) return;
  if (def.cpu === 'host') x.add(empty('cpu', [['mode', 'host-passthrough']]));
  else x.block(open('cpu', [['mode', 'custom'], ['match', 'exact']]), 'cpu', () => x.add(textElement('model', def.cpu ?? '', [['fallback', 'forbid']])));
}

function exportDisks(x: Lines, def: DomainDefinition): void {
  const bootDisk = def.boot.loader === 'disk' ? def.boot.disk : undefined;
  for (const disk of def.disks) {
    const type = disk.volume !== undefined ? 'volume' : disk.source?.startsWith('/dev/') === true ? 'block' : 'file';
    x.block(open('disk', [['type', type], ['device', 'disk']]), 'disk', () => {
      x.add(empty('driver', [['name', 'qemu'], ['type', disk.format], ['cache', disk.cache]]));
      if (type === 'volume') {
        const [pool, volume] = (disk.volume ?? '/').split('/');
        x.add(empty('source', [['pool', pool], ['volume', volume]]));
      } else {
        x.add(empty('source', [[type === 'block' ? 'dev' : 'file', disk.source]]));
      }
      x.add(empty('target', [['dev', disk.target], ['bus', disk.bus]]));
      if (disk.readonly) x.add(empty('readonly'));
      if (disk.shareable === true) x.add(empty('shareable'));
      if (bootDisk !== undefined && bootDisk === disk.id) x.add(empty('boot', [['order', 1]]));
    });
  }
}

function exportNics(x: Lines, def: DomainDefinition): void {
  for (const nic of def.nics) {
    const user = nic.network === 'user';
    x.block(open('interface', [['type', user ? 'user' : 'network']]), 'interface', () => {
      if (!user) x.add(empty('source', [['network', nic.network]]));
      x.add(empty('mac', [['address', nic.mac]]));
      x.add(empty('model', [['type', nic.model]]));
    });
  }
}

function exportFilesystems(x: Lines, extra: OptionalFields): void {
  for (const fs of extra.filesystems ?? []) {
    x.block(open('filesystem', [['type', 'mount'], ['accessmode', 'passthrough']]), 'filesystem', () => {
      if (fs.driver === 'virtiofs') x.add(empty('driver', [['type', 'virtiofs']]));
      else if (fs.driver === '9p') x.add(empty('driver', [['type', 'path']]));
      x.add(empty('source', [['dir', fs.source]]));
      x.add(empty('target', [['dir', fs.target]]));
      if (fs.readonly === true) x.add(empty('readonly'));
    });
  }
}

function exportDevices(x: Lines, def: DomainDefinition, extra: OptionalFields): void {
  x.block('<devices', 'devices', () => {
    x.add(textElement('emulator', '/usr/bin/qemu-system-x86_64'));
    exportDisks(x, def);
    if (def.controllers.scsi === 'auto') x.add(empty('controller', [['type', 'scsi'], ['index', 0], ['model', 'virtio-scsi']]));
    exportNics(x, def);
    exportFilesystems(x, extra);
    if (def.serial) {
      x.block(open('serial', [['type', 'pty']]), 'serial', () => x.add(empty('target', [['port', 0]])));
      x.block(open('console', [['type', 'pty']]), 'console', () => x.add(empty('target', [['type', 'serial'], ['port', 0]])));
    }
    if (def.graphics === 'vnc') x.block(open('graphics', [['type', 'vnc']]), 'graphics', () => x.add(empty('listen', [['type', 'socket']])));
    if (extra.video !== undefined) x.block('<video', 'video', () => x.add(empty('model', [['type', extra.video]])));
    if (extra.balloon !== undefined) x.add(empty('memballoon', [['model', extra.balloon ? 'virtio' : 'none']]));
    x.add(empty('panic', [['model', 'isa']]));
  });
}

function exportQemu(x: Lines, def: DomainDefinition): void {
  const env = Object.entries(def.qemu.env);
  if (def.qemu.args.length === 0 && env.length === 0) return;
  x.block('<qemu:commandline', 'qemu:commandline', () => {
    for (const arg of def.qemu.args) x.add(empty('qemu:arg', [['value', arg]]));
    for (const [name, value] of env) x.add(empty('qemu:env', [['name', name], ['value', value]]));
  });
}

/** What libvirt XML has no element for, in `<metadata>` under virtkit's namespace (metadata.ts). */
function exportMetadata(x: Lines, def: DomainDefinition): void {
  const items: string[] = [];
  for (const nic of def.nics) for (const rule of nic.hostfwd) items.push(empty('virtkit:hostfwd', [['nic', nic.mac], ['rule', rule]]));
  const boot = def.boot;
  if (boot.loader === 'guest' && (boot.entry !== undefined || boot.kernel !== undefined || boot.initrd !== undefined || boot.cmdline !== undefined)) {
    const entry = boot.entry;
    items.push(empty('virtkit:boot', [
      [typeof entry === 'number' ? 'entry-index' : 'entry', entry], ['kernel', boot.kernel], ['initrd', boot.initrd], ['cmdline', boot.cmdline],
    ]));
  }
  for (const disk of def.disks) if (disk.id !== disk.target) items.push(empty('virtkit:disk', [['target', disk.target], ['id', disk.id]]));
  if (def.on_host_shutdown !== 'shutdown' || def.shutdown_timeout !== 30) {
    items.push(empty('virtkit:host-shutdown', [['action', def.on_host_shutdown], ['timeout', def.shutdown_timeout]]));
  }
  if ((def as DomainDefinition & { vnc_password?: boolean }).vnc_password === true) items.push(empty('virtkit:vnc', [['password', 'required']]));
  if (items.length === 0) return;
  x.block('<metadata', 'metadata', () => {
    x.block(open('virtkit:definition', [['xmlns:virtkit', VirtkitNamespace]]), 'virtkit:definition', () => {
      for (const item of items) x.add(item);
    });
  });
}

/** The notes: words for people, kept as comments. */
function noteComments(extra: OptionalFields): string[] {
  return (extra.notes ?? []).map((note) => `virtkit note: ${note}`);
}

/**
 * The first string field holding a character XML 1.0 cannot carry (ESC, BEL and the other
 * C0 controls but tab, newline and CR), with its path (`qemu.env.TERM`, `qemu.args[2]`).
 */
function unwritableField(value: unknown, path: string): { path: string; offset: number; code: number } | undefined {
  if (typeof value === 'string') {
    const offset = firstNonXmlChar(value);
    return offset === -1 ? undefined : { path, offset, code: value.codePointAt(offset) ?? 0 };
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i += 1) {
      const found = unwritableField(value[i], `${path}[${i}]`);
      if (found !== undefined) return found;
    }
  } else if (typeof value === 'object' && value !== null) {
    for (const [key, inner] of Object.entries(value)) {
      const found = unwritableField(inner, path === '' ? key : `${path}.${key}`);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

/** A definition as libvirt domain XML (`virtkit dumpxml`, `virtkit convert --to libvirt`). */
export function exportLibvirtXml(def: DomainDefinition): string {
  // Refused rather than altered: no XML form of such a value reads back the same, and a
  // document with a raw ESC is neither XML nor safe on a terminal.
  const bad = unwritableField(def, '');
  if (bad !== undefined) {
    const message = `${escapeForTerminal(bad.path)}: holds ${codePointName(bad.code)} at character ${bad.offset + 1}, which XML 1.0 cannot carry, raw or as a character reference; change the field to export it as libvirt XML`;
    throw new VirtkitError('definition.unsupported', message, { path: bad.path, unsupported: [{ path: bad.path, reason: message }], rule: 'xml-char' });
  }
  const extra = def as DomainDefinition & OptionalFields;
  const x = new Lines();
  const usesQemu = def.qemu.args.length > 0 || Object.keys(def.qemu.env).length > 0;
  const type = def.accel === 'tcg' ? 'qemu' : 'kvm';
  x.block(open('domain', [['type', type], ['xmlns:qemu', usesQemu ? QemuNamespace : undefined]]), 'domain', () => {
    x.add(textElement('name', def.name));
    x.add(textElement('uuid', def.uuid));
    if (extra.title !== undefined) x.add(textElement('title', extra.title));
    if (extra.description !== undefined) x.add(textElement('description', extra.description));
    exportMetadata(x, def);
    x.add(memoryElement('memory', def.memory));
    x.add(memoryElement('currentMemory', def.memory));
    if (extra.memory_limit !== undefined) x.block('<memtune', 'memtune', () => x.add(memoryElement('hard_limit', extra.memory_limit ?? 0)));
    const max = extra.maxvcpus;
    x.add(textElement('vcpu', max ?? def.vcpus, [['placement', 'static'], ['current', max !== undefined && max !== def.vcpus ? def.vcpus : undefined]]));
    if (extra.cpu_shares !== undefined || extra.cpu_quota !== undefined) {
      x.block('<cputune', 'cputune', () => {
        if (extra.cpu_shares !== undefined) x.add(textElement('shares', extra.cpu_shares));
        if (extra.cpu_quota !== undefined) {
          x.add(textElement('period', 100000));
          x.add(textElement('quota', extra.cpu_quota * 1000));
        }
      });
    }
    if (def.boot.loader === 'guest') x.add(textElement('bootloader', '/usr/bin/pygrub'));
    exportOs(x, def, extra);
    x.block('<features', 'features', () => {
      x.add(empty('acpi'));
      x.add(empty('apic'));
    });
    exportCpu(x, def);
    x.add(empty('clock', [['offset', 'utc']]));
    x.add(textElement('on_poweroff', def.on_poweroff));
    x.add(textElement('on_reboot', def.on_reboot));
    x.add(textElement('on_crash', def.on_crash));
    exportDevices(x, def, extra);
    exportQemu(x, def);
    for (const line of noteComments(extra)) x.add(comment(line));
  });
  return `${x.out.join('\n')}\n`;
}
