/**
 * `virtkit create`: virt-install's job. Flags become a definition through the one schema
 * (each flag's help is its field's description), missing disk images are created (qemu-img
 * through src/storage, or a pool volume through the API), uuid and MACs are filled in by
 * the schema's normalization; then the definition is printed, defined, or defined and
 * started (docs/create.md).
 *
 * The order keeps failures cheap: every flag is parsed and the whole definition validated
 * before anything is created, and what was created is removed again if the define fails.
 */
import { existsSync } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Command, Option } from 'commander';
import type { VirtkitClient } from '../../client/index.js';
import { definitionFields, formatDefinition, formatSize, validateDefinition, type DomainDefinition } from '../../conf/index.js';
import { createImage } from '../../storage/index.js';
import { chooseImageFormat } from '../../storage/image/index.js';
import { checkPoolName, checkVolumeName, checkVolumeNameFormat } from '../../storage/pool/index.js';
import { isVirtkitError, VirtkitError } from '../../util/errors.js';
import { escapeForTerminal } from '../../util/terminal-text.js';
import { withClient, withConnect, type ConnectOpts } from './connect.js';
import { parseImageSize } from './img.js';

// ---- flag specs (pure) ----

/** What one `--disk` asks for. */
export type DiskRequest =
  | { kind: 'path'; flag: string; path: string; format?: string; size?: number; device: DeviceSettings }
  | { kind: 'pool'; flag: string; pool: string; name?: string; format?: string; size?: number; device: DeviceSettings }
  | { kind: 'vol'; flag: string; pool: string; volume: string; device: DeviceSettings };

/** The disk fields a spec may set directly. */
export interface DeviceSettings {
  bus?: string;
  target?: string;
  id?: string;
  cache?: string;
  readonly?: boolean;
}

const DiskKeys = ['path', 'pool', 'vol', 'name', 'size', 'format', 'bus', 'target', 'id', 'cache', 'readonly'] as const;
const NicKeys = ['hostfwd', 'mac', 'model', 'id'] as const;

function bad(flag: string, spec: string, message: string): VirtkitError {
  return new VirtkitError('argument.invalid', `${flag} ${spec}: ${message}`, { option: flag, value: spec });
}

/**
 * `a,b=c,d=e` -> the leading positional value and the key=value pairs, in order. `,,` is a
 * comma inside a value (virt-install's escape), so any path can be written.
 */
export function splitSpec(text: string): { head?: string; pairs: [string, string][] } {
  const items: string[] = [];
  let current = '';
  for (let i = 0; i < text.length; i++) {
    if (text[i] === ',' && text[i + 1] === ',') { current += ','; i++; } else if (text[i] === ',') { items.push(current); current = ''; } else current += text[i];
  }
  items.push(current);
  const pairs: [string, string][] = [];
  let head: string | undefined;
  items.forEach((item, i) => {
    const eq = item.indexOf('=');
    if (eq <= 0) {
      if (i === 0) head = item;
      else pairs.push([item, '']);
    } else pairs.push([item.slice(0, eq).trim(), item.slice(eq + 1)]);
  });
  return { ...(head === undefined ? {} : { head }), pairs };
}

function onOff(flag: string, spec: string, key: string, value: string): boolean {
  if (/^(on|yes|true|1|)$/i.test(value)) return true;
  if (/^(off|no|false|0)$/i.test(value)) return false;
  throw bad(flag, spec, `${key}= must be on or off, got "${value}"`);
}

/** `size=8G` as qemu-img reads it; a plain number is GiB, as virt-install reads it. */
export function diskSize(flag: string, spec: string, value: string): number {
  if (/^\d+(\.\d+)?$/.test(value.trim())) {
    const bytes = Math.round(Number(value) * 1024 ** 3);
    if (Number.isSafeInteger(bytes) && bytes > 0) return bytes;
  }
  let bytes: number;
  try {
    bytes = parseImageSize(value);
  } catch {
    throw bad(flag, spec, `size= must be a size like 8G, 512M or 8 (GiB), got "${value}"`);
  }
  if (bytes <= 0) throw bad(flag, spec, 'size= must be more than 0');
  return bytes;
}

/** One `--disk` spec. @throws argument.invalid naming the flag and what is wrong. */
export function parseDiskSpec(spec: string): DiskRequest {
  const flag = '--disk';
  const { head, pairs } = splitSpec(spec);
  const settings = new Map<string, string>();
  if (head !== undefined && head !== '') settings.set('path', head);
  for (const [key, value] of pairs) {
    if (!(DiskKeys as readonly string[]).includes(key)) throw bad(flag, spec, `unknown key "${key}" (known: ${DiskKeys.join(', ')})`);
    if (settings.has(key)) throw bad(flag, spec, `${key}= is given twice`);
    settings.set(key, value);
  }
  const device: DeviceSettings = {};
  for (const key of ['bus', 'target', 'id', 'cache'] as const) {
    const value = settings.get(key);
    if (value !== undefined) device[key] = value;
  }
  const ro = settings.get('readonly');
  if (ro !== undefined) device.readonly = onOff(flag, spec, 'readonly', ro);
  const size = settings.get('size');
  const format = settings.get('format');
  const sources = (['path', 'pool', 'vol'] as const).filter((k) => settings.has(k));
  if (sources.length !== 1) throw bad(flag, spec, `must name exactly one of PATH, pool=POOL or vol=POOL/VOLUME${sources.length > 1 ? `, got ${sources.join(' and ')}` : ''}`);
  const common = { flag, ...(format === undefined ? {} : { format }), ...(size === undefined ? {} : { size: diskSize(flag, spec, size) }), device };
  if (sources[0] === 'path') {
    const path = settings.get('path')!;
    if (settings.has('name')) throw bad(flag, spec, 'name= names a pool volume; it goes with pool=');
    if (path === '' || /[\n\r\0]/.test(path)) throw bad(flag, spec, 'the path must not be empty or contain newline or NUL');
    return { kind: 'path', path, ...common };
  }
  if (sources[0] === 'pool') {
    const name = settings.get('name');
    return { kind: 'pool', pool: settings.get('pool')!, ...(name === undefined ? {} : { name }), ...common };
  }
  const vol = settings.get('vol')!;
  const slash = vol.indexOf('/');
  if (slash <= 0 || slash === vol.length - 1) throw bad(flag, spec, `vol= must be POOL/VOLUME, got "${vol}"`);
  if (size !== undefined || format !== undefined) throw bad(flag, spec, 'vol= names an existing volume: its size and format are its own (use pool=POOL,name=VOLUME,size=... to create one)');
  return { kind: 'vol', flag, pool: vol.slice(0, slash), volume: vol.slice(slash + 1), device };
}

/** One `--nic` spec: `user[,hostfwd=RULE]...[,mac=MAC][,model=MODEL][,id=ID]`. */
export function parseNicSpec(spec: string): Record<string, unknown> {
  const flag = '--nic';
  const { head, pairs } = splitSpec(spec);
  const nic: Record<string, unknown> = {};
  const hostfwd: string[] = [];
  let network = head;
  for (const [key, value] of pairs) {
    if (key === 'network' && network === undefined) { network = value; continue; }
    if (key === 'bridge') throw bad(flag, spec, 'virtkit has no bridges or networks yet: use --nic user (QEMU\'s user-mode NAT)');
    if (!(NicKeys as readonly string[]).includes(key)) throw bad(flag, spec, `unknown key "${key}" (known: ${NicKeys.join(', ')})`);
    if (key === 'hostfwd') hostfwd.push(value);
    else if (nic[key] !== undefined) throw bad(flag, spec, `${key}= is given twice`);
    else nic[key] = value;
  }
  if (network !== 'user') {
    throw bad(flag, spec, `the network must be user (QEMU's user-mode NAT; virtkit has no bridges or networks yet), got "${network ?? ''}"`);
  }
  return { ...nic, network: 'user', ...(hostfwd.length > 0 ? { hostfwd } : {}) };
}

/** `--graphics vnc[,password=on]` or `none`. */
export function parseGraphicsSpec(spec: string): { graphics: string; vnc_password?: boolean } {
  const { head, pairs } = splitSpec(spec);
  if (head !== 'vnc' && head !== 'none') throw bad('--graphics', spec, `must be vnc or none, got "${head ?? ''}"`);
  const out: { graphics: string; vnc_password?: boolean } = { graphics: head };
  for (const [key, value] of pairs) {
    if (key !== 'password' || head !== 'vnc') throw bad('--graphics', spec, `unknown key "${key}" (vnc takes password=on)`);
    out.vnc_password = onOff('--graphics', spec, key, value);
  }
  return out;
}

/** `--memory 512` is MiB (virt-install's unit); with a unit it is what the schema reads (`512MiB`, `1GiB`). */
export function memoryValue(text: string): string {
  return /^\s*\d+\s*$/.test(text) ? `${text.trim()}MiB` : text;
}

// ---- the flags, each bound to its definition field ----

export interface CreateOptions extends ConnectOpts {
  name?: string;
  uuid?: string;
  title?: string;
  description?: string;
  memory?: string;
  vcpus?: string;
  maxvcpus?: string;
  machine?: string;
  cpu?: string;
  accel?: string;
  firmware?: string;
  kernel?: string;
  initrd?: string;
  cmdline?: string;
  diskBoot?: boolean;
  guestBoot?: boolean;
  entry?: string;
  disk: string[];
  nic: string[];
  graphics?: string;
  video?: string;
  serial?: boolean;
  onPoweroff?: string;
  onReboot?: string;
  onCrash?: string;
  print?: boolean;
  define?: boolean;
  start?: boolean;
  console?: boolean;
}

/** Each flag and the definition field it sets: the help text is the field's own description. */
export const FlagFields: readonly { flags: string; field: string; note?: string }[] = [
  { flags: '--name <name>', field: 'name' },
  { flags: '--uuid <uuid>', field: 'uuid' },
  { flags: '--title <text>', field: 'title' },
  { flags: '--description <text>', field: 'description' },
  { flags: '--memory <size>', field: 'memory', note: 'A plain number is MiB, as virt-install reads it.' },
  { flags: '--vcpus <n>', field: 'vcpus' },
  { flags: '--maxvcpus <n>', field: 'maxvcpus' },
  { flags: '--machine <type>', field: 'machine' },
  { flags: '--cpu <model>', field: 'cpu' },
  { flags: '--accel <accel>', field: 'accel' },
  { flags: '--firmware <kind>', field: 'firmware' },
  { flags: '--kernel <path>', field: 'boot.kernel', note: 'Selects boot.loader direct; relative to the current directory.' },
  { flags: '--initrd <path>', field: 'boot.initrd' },
  { flags: '--cmdline <text>', field: 'boot.cmdline' },
  { flags: '--disk-boot', field: 'boot.loader: disk' },
  { flags: '--guest-boot', field: 'boot.loader: guest' },
  { flags: '--entry <title-or-index>', field: 'boot.entry', note: 'With --guest-boot.' },
  { flags: '--disk <spec>', field: 'disks', note: 'Repeatable. PATH[,format=raw|qcow2][,size=8G][,bus=][,target=][,id=][,cache=][,readonly=on], pool=POOL,size=4G[,name=VOL][,format=] (a new volume) or vol=POOL/VOL; a missing PATH is created with size= (a plain number is GiB); the format comes from format= or the name (.qcow2, .raw, .img), never from the content.' },
  { flags: '--nic <spec>', field: 'nics', note: 'Repeatable. user[,hostfwd=tcp::2222-:22]...[,mac=][,model=virtio|e1000|rtl8139][,id=].' },
  { flags: '--graphics <mode>', field: 'graphics', note: 'vnc,password=on also sets vnc_password.' },
  { flags: '--video <model>', field: 'video' },
  { flags: '--no-serial', field: 'serial', note: '--no-serial leaves it out.' },
  { flags: '--on-poweroff <action>', field: 'on_poweroff' },
  { flags: '--on-reboot <action>', field: 'on_reboot' },
  { flags: '--on-crash <action>', field: 'on_crash' },
];

/** The first sentence of a field's description, and its path, as a flag's help. */
export function fieldHelp(field: string, note?: string): string {
  const docs = definitionFields();
  const found = docs.find((f) => f.path === field);
  if (found === undefined) throw new VirtkitError('internal', `create: no definition field ${field}`);
  const text = found.description.replace(/^\([^)]*\) /, '').replace(/\\\|/g, '|');
  // The first sentence, without what only holds for definition files (relative paths).
  const first = (/^.*?\.(?=\s|$)/.exec(text)?.[0] ?? text).replace(/;[^;.]*definition file[^.]*/, '');
  // An enumeration lists its values.
  const values = /^`[^`]+`( \\\| `[^`]+`)+$/.test(found.type) ? ` One of: ${found.type.replace(/`/g, '').split(' \\| ').join(', ')}.` : '';
  return `${first}${values}${note === undefined ? '' : ` ${note}`} [${field}]`;
}

/** Which flag set a definition field, so a schema error names the flag. */
function flagOfField(path: string, o: CreateOptions): string | undefined {
  const disk = /^disks\[(\d+)\]/.exec(path);
  if (disk !== null) return `--disk ${o.disk[Number(disk[1])] ?? ''}`.trim();
  const nic = /^nics\[(\d+)\]/.exec(path);
  if (nic !== null) return `--nic ${o.nic[Number(nic[1])] ?? ''}`.trim();
  const byField: Readonly<Record<string, string>> = {
    'boot.kernel': '--kernel', 'boot.initrd': '--initrd', 'boot.cmdline': '--cmdline', 'boot.entry': '--entry', vnc_password: '--graphics',
    on_poweroff: '--on-poweroff', on_reboot: '--on-reboot', on_crash: '--on-crash',
  };
  const top = path.split(/[.[]/)[0] ?? path;
  return byField[path] ?? FlagFields.find((f) => f.field === top)?.flags.split(' ')[0];
}

/** The resolved disks: pool volume names chosen, formats decided. */
export interface PlannedDisk {
  request: DiskRequest;
  field: Record<string, unknown>;
  /** What to create before the define; absent: the image exists. */
  create?: { kind: 'file'; path: string; format: 'raw' | 'qcow2'; size: number } | { kind: 'volume'; pool: string; name: string; format: 'raw' | 'qcow2'; size: number };
}

const VolumeExtension = { qcow2: '.qcow2', raw: '.raw' } as const;

/**
 * Decide each disk: an existing file is used as it is, a missing one is created with `size=`;
 * `pool=` gets a new volume named after the domain (`NAME.qcow2`, then `NAME-1.qcow2`...)
 * unless `name=` says otherwise. `taken` lists the volume names already in each pool.
 */
export function planDisks(requests: readonly DiskRequest[], domain: string, taken: ReadonlyMap<string, ReadonlySet<string>>, notes: string[]): PlannedDisk[] {
  const claimed = new Map<string, Set<string>>();
  const paths = new Set<string>();
  return requests.map((r) => {
    const spec = `${r.flag} ${describeRequest(r)}`;
    if (r.kind === 'vol') {
      asThePoolWould(spec, () => { checkPoolName(r.pool); checkVolumeName(r.volume); });
      // `taken` knows a pool only when the daemon was asked (--define, --start)
      const existing = taken.get(r.pool);
      if (existing !== undefined && !existing.has(r.volume)) {
        throw new VirtkitError('volume.not-found', `${spec}: pool ${r.pool} has no volume ${r.volume} (vol= names an existing volume; pool=${r.pool},name=${r.volume},size=... creates one)`, { option: '--disk', pool: r.pool, volume: r.volume });
      }
      return { request: r, field: { volume: `${r.pool}/${r.volume}`, format: formatOfName(r.volume, undefined, spec), ...r.device } };
    }
    if (r.kind === 'path') {
      const path = resolve(r.path);
      // Two disks on one file would be created twice, and two writers on one image corrupt it.
      if (paths.has(path)) throw new VirtkitError('argument.invalid', `${spec}: ${path} is already another --disk`, { option: '--disk', path });
      paths.add(path);
      const format = formatOfName(path, r.format, spec);
      if (existsSync(path)) {
        if (r.size !== undefined) notes.push(`${path} exists: used as it is, size= not applied`);
        return { request: r, field: { source: path, format, ...r.device } };
      }
      if (r.size === undefined) throw new VirtkitError('argument.invalid', `${spec}: ${path} does not exist; give size= to create it`, { option: '--disk', path });
      return { request: r, field: { source: path, format, ...r.device }, create: { kind: 'file', path, format, size: r.size } };
    }
    const format = (r.format ?? (r.name === undefined ? 'qcow2' : formatOfName(r.name, undefined, spec))) as 'raw' | 'qcow2';
    if (format !== 'raw' && format !== 'qcow2') throw new VirtkitError('argument.invalid', `${spec}: format= must be raw or qcow2, got "${format}"`, { option: '--disk' });
    const used = claimed.get(r.pool) ?? new Set(taken.get(r.pool) ?? []);
    claimed.set(r.pool, used);
    asThePoolWould(spec, () => checkPoolName(r.pool));
    let name = r.name;
    if (name !== undefined) {
      // the name the pool will be asked to create, checked by the pool's own rule
      asThePoolWould(spec, () => checkVolumeNameFormat(name!, format));
      if (formatOfName(name, r.format, spec) !== format) throw new VirtkitError('argument.invalid', `${spec}: name= ${name} declares another format than ${format}`, { option: '--disk' });
      if (used.has(name)) {
        if (r.size !== undefined) throw new VirtkitError('argument.invalid', `${spec}: volume ${r.pool}/${name} exists; drop size= to use it, or choose another name=`, { option: '--disk' });
        return { request: r, field: { volume: `${r.pool}/${name}`, format, ...r.device } };
      }
    } else {
      for (let i = 0; name === undefined || used.has(name); i++) name = `${domain}${i === 0 ? '' : `-${i}`}${VolumeExtension[format]}`;
    }
    if (r.size === undefined) throw new VirtkitError('argument.invalid', `${spec}: a new volume needs size=`, { option: '--disk' });
    used.add(name);
    return { request: r, field: { volume: `${r.pool}/${name}`, format, ...r.device }, create: { kind: 'volume', pool: r.pool, name, format, size: r.size } };
  });
}

/** Runs a pool's own name rule (storage/pool/names.ts), its error naming the --disk spec. */
function asThePoolWould(spec: string, check: () => void): void {
  try {
    check();
  } catch (err) {
    if (isVirtkitError(err)) throw new VirtkitError(err.code, `${spec}: ${err.message}`, { ...err.data, option: '--disk' });
    throw err;
  }
}

/** --kernel and --initrd name files on this host: a define that cannot start is refused first. */
export function checkBootFiles(o: Pick<CreateOptions, 'kernel' | 'initrd'>): void {
  for (const [flag, path] of [['--kernel', o.kernel], ['--initrd', o.initrd]] as const) {
    if (path !== undefined && !existsSync(resolve(path))) {
      throw new VirtkitError('argument.invalid', `${flag} ${path}: no such file on this host`, { option: flag, path: resolve(path) });
    }
  }
}

function describeRequest(r: DiskRequest): string {
  if (r.kind === 'path') return r.path;
  if (r.kind === 'vol') return `vol=${r.pool}/${r.volume}`;
  return `pool=${r.pool}${r.name === undefined ? '' : `,name=${r.name}`}`;
}

function formatOfName(path: string, explicit: string | undefined, spec: string): 'raw' | 'qcow2' {
  try {
    return chooseImageFormat(path, { explicit, flag: 'format=', accepts: ['raw', 'qcow2'] }).format as 'raw' | 'qcow2';
  } catch (err) {
    if (isVirtkitError(err)) throw new VirtkitError('argument.invalid', `${spec}: ${err.message}`, { ...err.data, option: '--disk' });
    throw err;
  }
}

function integerFlag(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\s*\d{1,6}\s*$/.test(text)) throw new VirtkitError('argument.invalid', `${flag} must be a whole number, got "${text}"`, { option: flag, value: text });
  return Number(text);
}

/** The definition document the flags describe (schema input, not yet validated). */
export function definitionFromFlags(o: CreateOptions, disks: readonly PlannedDisk[]): Record<string, unknown> {
  if (o.name === undefined) throw new VirtkitError('argument.invalid', '--name is required', { option: '--name' });
  if (o.memory === undefined) throw new VirtkitError('argument.invalid', '--memory is required (e.g. 512MiB)', { option: '--memory' });
  const boots = [o.kernel !== undefined && '--kernel', o.diskBoot === true && '--disk-boot', o.guestBoot === true && '--guest-boot'].filter((x) => x !== false);
  if (boots.length > 1) throw new VirtkitError('argument.invalid', `${boots.join(' and ')} exclude each other: choose one way to boot`, { option: boots[1] });
  for (const [flag, given] of [['--initrd', o.initrd], ['--cmdline', o.cmdline]] as const) {
    if (given !== undefined && o.kernel === undefined && !(flag === '--cmdline' && o.guestBoot === true)) {
      throw new VirtkitError('argument.invalid', `${flag} needs --kernel${flag === '--cmdline' ? ' (or --guest-boot)' : ''}`, { option: flag });
    }
  }
  if (o.entry !== undefined && o.guestBoot !== true) throw new VirtkitError('argument.invalid', '--entry needs --guest-boot', { option: '--entry' });
  let boot: Record<string, unknown> | undefined;
  if (o.kernel !== undefined) {
    boot = { loader: 'direct', kernel: o.kernel, ...(o.initrd === undefined ? {} : { initrd: o.initrd }), ...(o.cmdline === undefined ? {} : { cmdline: o.cmdline }) };
  } else if (o.guestBoot === true) {
    const entry = o.entry === undefined ? undefined : /^\d+$/.test(o.entry) ? Number(o.entry) : o.entry;
    boot = { loader: 'guest', ...(entry === undefined ? {} : { entry }), ...(o.cmdline === undefined ? {} : { cmdline: o.cmdline }) };
  } else if (o.diskBoot === true) boot = { loader: 'disk' };
  const graphics = o.graphics === undefined ? undefined : parseGraphicsSpec(o.graphics);
  const def: Record<string, unknown> = {
    name: o.name,
    uuid: o.uuid,
    title: o.title,
    description: o.description,
    memory: memoryValue(o.memory),
    vcpus: integerFlag('--vcpus', o.vcpus),
    maxvcpus: integerFlag('--maxvcpus', o.maxvcpus),
    machine: o.machine,
    cpu: o.cpu,
    accel: o.accel,
    firmware: o.firmware,
    boot,
    disks: disks.length === 0 ? undefined : disks.map((d) => d.field),
    nics: o.nic.length === 0 ? undefined : o.nic.map(parseNicSpec),
    graphics: graphics?.graphics,
    vnc_password: graphics?.vnc_password,
    video: o.video,
    serial: o.serial === false ? false : undefined,
    on_poweroff: o.onPoweroff,
    on_reboot: o.onReboot,
    on_crash: o.onCrash,
  };
  for (const key of Object.keys(def)) if (def[key] === undefined) delete def[key];
  return def;
}

/** Validate, naming the flag behind a failing field. */
export function validateFlags(doc: Record<string, unknown>, o: CreateOptions): DomainDefinition {
  try {
    return validateDefinition(doc, { baseDir: process.cwd() });
  } catch (err) {
    if (!isVirtkitError(err) || err.code !== 'definition.invalid') throw err;
    const path = typeof err.data['path'] === 'string' ? err.data['path'] : '';
    const flag = flagOfField(path, o);
    if (flag === undefined) throw err;
    throw new VirtkitError('argument.invalid', `${flag}: ${err.message}`, { ...err.data, option: flag.split(' ')[0] ?? flag });
  }
}

// ---- effects ----

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

async function poolVolumeNames(c: VirtkitClient, pools: readonly string[]): Promise<Map<string, Set<string>>> {
  const out = new Map<string, Set<string>>();
  for (const pool of new Set(pools)) {
    const list = await c.volumeList(pool);
    out.set(pool, new Set(list.volumes.map((v) => v.name)));
  }
  return out;
}

/** Creates what the plan needs; returns an undo for each thing created. */
async function createStorage(c: VirtkitClient | undefined, plan: readonly PlannedDisk[], say: (line: string) => void): Promise<(() => Promise<void>)[]> {
  const undo: (() => Promise<void>)[] = [];
  try {
    for (const d of plan) {
      const what = d.create;
      if (what === undefined) continue;
      if (what.kind === 'file') {
        await createImage({ path: what.path, format: what.format, size: what.size });
        undo.push(() => unlink(what.path).catch(() => undefined));
        say(`Created disk ${what.path} (${what.format}, ${formatSize(what.size)})`);
      } else {
        await c!.volumeCreate(what.pool, { name: what.name, capacity: what.size, format: what.format });
        undo.push(async () => { await c!.volumeDelete(what.pool, what.name).catch(() => undefined); });
        say(`Created volume ${what.pool}/${what.name} (${what.format}, ${formatSize(what.size)})`);
      }
    }
  } catch (err) {
    await rollBack(undo);
    throw err;
  }
  return undo;
}

async function rollBack(undo: readonly (() => Promise<void>)[]): Promise<void> {
  for (const u of [...undo].reverse()) await u();
}

/** `virtkit console NAME`, run as that verb runs it. */
async function attachConsole(name: string, o: ConnectOpts): Promise<void> {
  const program = new Command('virtkit').exitOverride();
  (await import('./console.js')).register(program);
  await program.parseAsync(['console', name, ...(o.connect === undefined ? [] : ['--connect', o.connect])], { from: 'user' });
}

export function register(program: Command): void {
  const cmd = withConnect(program.command('create')
    .description('create a domain from flags (virt-install\'s job): new disk images, uuid and MACs filled in; print it, define it, or define and start it'));
  for (const f of FlagFields) {
    const option = new Option(f.flags, fieldHelp(f.field, f.note));
    if (f.flags.startsWith('--disk ') || f.flags.startsWith('--nic ')) option.argParser(collect).default([], 'none');
    // a missing --name or --memory is a usage error (exit 2), as a missing argument is
    if (f.field === 'name' || f.field === 'memory') option.makeOptionMandatory();
    cmd.addOption(option);
  }
  cmd
    .option('--print', 'print the definition as YAML (the default when neither --define nor --start is given; creates nothing)')
    .option('--define', 'create the missing disks and define the domain')
    .option('--start', 'create the missing disks, define the domain and start it')
    .option('--console', 'with --start: attach to the serial console, as `virtkit console` does (Ctrl-] detaches)')
    .addHelpText('after', `
Every flag sets the definition field named in brackets (docs/definition.md); what no flag sets keeps its default.

Examples:
  virtkit create --name web --memory 512MiB --vcpus 2 --disk /var/lib/virtkit/web.qcow2,size=8G --nic user,hostfwd=tcp::2222-:22 --disk-boot --print
  virtkit create --name demo --memory 256MiB --kernel ./g/vmlinuz --initrd ./g/initrd.img --cmdline console=ttyS0 --disk pool=images,size=1G --start --console`)
    .action(async (o: CreateOptions) => {
      if (o.console === true && o.start !== true) throw new VirtkitError('argument.invalid', '--console needs --start', { option: '--console' });
      const define = o.define === true || o.start === true;
      const print = o.print === true || !define;
      // With --print the YAML owns stdout; progress goes to stderr.
      const say = (line: string): void => { (print ? process.stderr : process.stdout).write(`${escapeForTerminal(line)}\n`); };
      const requests = o.disk.map(parseDiskSpec);
      const pools = requests.flatMap((r) => (r.kind === 'path' ? [] : [r.pool]));
      // Shape errors first, before any daemon is asked anything.
      definitionFromFlags(o, []);
      o.nic.forEach(parseNicSpec);
      const notes: string[] = [];
      if (!define) {
        const plan = planDisks(requests, o.name!, new Map(), notes);
        const def = validateFlags(definitionFromFlags(o, plan), o);
        for (const n of notes) process.stderr.write(`note: ${escapeForTerminal(n)}\n`);
        process.stdout.write(formatDefinition(def, 'yaml'));
        return;
      }
      checkBootFiles(o);
      await withClient(o, async (c) => {
        const plan = planDisks(requests, o.name!, await poolVolumeNames(c, pools), notes);
        const def = validateFlags(definitionFromFlags(o, plan), o);
        for (const n of notes) process.stderr.write(`note: ${escapeForTerminal(n)}\n`);
        if (print) process.stdout.write(formatDefinition(def, 'yaml'));
        const undo = await createStorage(c, plan, say);
        let info;
        try {
          info = await c.define(JSON.stringify(def), { format: 'json', baseDir: process.cwd() });
        } catch (err) {
          await rollBack(undo);
          throw err;
        }
        say(`Domain '${info.name}' defined (uuid ${info.uuid})`);
        if (o.start !== true) return;
        await c.start(info.name);
        say(`Domain '${info.name}' started`);
      });
      if (o.console === true) await attachConsole(o.name!, o);
    });
}
