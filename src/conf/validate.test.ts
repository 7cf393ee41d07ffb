import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { isVirtkitError, VirtkitError } from '../util/errors.js';
import {
  DomainDefinitionSchema, formatDefinition, loadDefinition, parseDefinition, parseSize, formatSize, targetIndex, targetName,
  validateDefinition, type DomainDefinition,
} from './index.js';

const base = 'name: web1\nmemory: 256MiB\n';

function parse(yaml: string, baseDir?: string): DomainDefinition {
  return parseDefinition(yaml, baseDir === undefined ? {} : { baseDir });
}

function errorOf(yaml: string, format: 'yaml' | 'json' = 'yaml'): VirtkitError {
  try {
    parseDefinition(yaml, { format });
  } catch (err) {
    if (err instanceof VirtkitError) return err;
    throw err;
  }
  throw new Error(`accepted: ${yaml}`);
}

describe('defaults', () => {
  test('a minimal definition gets every default', () => {
    const def = parse(base);
    expect(def).toMatchObject({
      name: 'web1', memory: 256 * 1024 * 1024, vcpus: 1, machine: 'pc', accel: 'auto', boot: { loader: 'disk' },
      disks: [], nics: [], serial: true, graphics: 'none', on_poweroff: 'destroy', on_reboot: 'restart',
      on_crash: 'destroy', on_host_shutdown: 'shutdown', shutdown_timeout: 30, qemu: { args: [], env: {} },
    });
    expect(def.cpu).toBeUndefined();
    expect(def.uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  test('keys come out in schema order', () => {
    expect(Object.keys(parse(`${base}disks: [{format: raw, source: /a}]`))).toEqual(Object.keys(DomainDefinitionSchema.properties).filter((k) => (DomainDefinitionSchema.required as readonly string[]).includes(k)));
  });

  test('each definition gets its own uuid; given ones are kept, lower-cased', () => {
    expect(parse(base).uuid).not.toBe(parse(base).uuid);
    expect(parse(`${base}uuid: 6F1C3A52-3D3E-4C43-9A4E-0D1F2E3C4B5A`).uuid).toBe('6f1c3a52-3d3e-4c43-9a4e-0d1f2e3c4b5a');
  });

  test('NICs get distinct random MACs in 52:54:00; given ones are lower-cased', () => {
    const def = parse(`${base}nics: [{}, {model: e1000}, {mac: "52:54:00:AA:BB:CC"}]`);
    expect(def.nics[0]?.mac).toMatch(/^52:54:00(:[0-9a-f]{2}){3}$/);
    expect(def.nics[0]?.mac).not.toBe(def.nics[1]?.mac);
    expect(def.nics[2]?.mac).toBe('52:54:00:aa:bb:cc');
    expect(def.nics[1]).toMatchObject({ model: 'e1000', network: 'user', hostfwd: [] });
  });

  test('disks default to virtio, writeback, read-write', () => {
    expect(parse(`${base}disks: [{source: /a.img, format: raw}]`).disks[0]).toEqual({
      id: 'vda', source: '/a.img', format: 'raw', bus: 'virtio', target: 'vda', readonly: false, cache: 'writeback',
    });
  });

  test('boot: kernel implies the direct loader; absent boot means the firmware', () => {
    expect(parse(`${base}boot: {kernel: /k}`).boot).toEqual({ loader: 'direct', kernel: '/k' });
    expect(parse(base).boot).toEqual({ loader: 'disk' });
    expect(parse(`${base}boot: {loader: guest, entry: 2}`).boot).toEqual({ loader: 'guest', entry: 2 });
  });
});

describe('every field is accepted in its documented forms', () => {
  test.each([
    ['vcpus: 8', { vcpus: 8 }],
    ['machine: q35', { machine: 'q35' }],
    ['machine: pc-i440fx-7.2', { machine: 'pc-i440fx-7.2' }],
    ['cpu: Skylake-Client-v4', { cpu: 'Skylake-Client-v4' }],
    ['accel: kvm', { accel: 'kvm' }],
    ['accel: tcg', { accel: 'tcg' }],
    ['serial: false', { serial: false }],
    ['graphics: vnc', { graphics: 'vnc' }],
    ['on_poweroff: preserve', { on_poweroff: 'preserve' }],
    ['on_reboot: destroy', { on_reboot: 'destroy' }],
    ['on_crash: restart', { on_crash: 'restart' }],
    ['on_host_shutdown: none', { on_host_shutdown: 'none' }],
    ['shutdown_timeout: 120', { shutdown_timeout: 120 }],
    ['qemu: {args: [-no-hpet], env: {A_B: "1"}}', { qemu: { args: ['-no-hpet'], env: { A_B: '1' } } }],
    ['qemu: {args: [-S]}', { qemu: { args: ['-S'], env: {} } }],
    ['boot: {loader: disk, disk: 0}\ndisks: [{volume: pool/v1, format: qcow2}]', { boot: { loader: 'disk', disk: 'vda' } }],
    ['boot: {loader: disk, disk: root}\ndisks: [{source: /a, format: raw}, {id: root, volume: pool/v1, format: qcow2}]', { boot: { loader: 'disk', disk: 'root' } }],
    ['controllers: {scsi: none}', { controllers: { scsi: 'none' } }],
    ['disks: [{id: root-disk_1, source: /a, format: raw, bus: ide, target: hdc}]', { disks: [{ id: 'root-disk_1', bus: 'ide', target: 'hdc' }] }],
    ['nics: [{id: uplink}, {}]', { nics: [{ id: 'uplink' }, { id: 'net0' }] }],
    ['boot: {loader: guest, kernel: /boot/vmlinuz, initrd: /boot/initrd.img, cmdline: ro}', { boot: { loader: 'guest', kernel: '/boot/vmlinuz', initrd: '/boot/initrd.img', cmdline: 'ro' } }],
    ['boot: {loader: guest, entry: Debian GNU/Linux}', { boot: { loader: 'guest', entry: 'Debian GNU/Linux' } }],
    ['disks: [{volume: default/root.qcow2, format: qcow2, bus: scsi, readonly: true, cache: none}]', { disks: [{ volume: 'default/root.qcow2', format: 'qcow2', bus: 'scsi', readonly: true, cache: 'none' }] }],
    ['nics: [{model: rtl8139, hostfwd: ["tcp::2222-:22", "udp:127.0.0.1:53-10.0.2.15:53", "::80-:80"]}]', { nics: [{ model: 'rtl8139', hostfwd: ['tcp::2222-:22', 'udp:127.0.0.1:53-10.0.2.15:53', '::80-:80'] }] }],
  ])('%s', (yaml, expected) => {
    expect(parse(`${base}${yaml}\n`)).toMatchObject(expected);
  });

  test.each([
    ['256MiB', 256], ['1GiB', 1024], ['1G', 1024], ['512M', 512], ['16MiB', 16], ['1048576K', 1024], ['65536KiB', 64],
    [' 32 mib ', 32], [String(64 * 1024 * 1024), 64], ['1TiB', 1024 * 1024],
  ])('memory %s', (text, mib) => {
    expect(parse(`name: a\nmemory: "${text}"\n`).memory).toBe(mib * 1024 * 1024);
  });

  test('memory as a JSON number is bytes', () => {
    expect(parseDefinition(JSON.stringify({ name: 'a', memory: 32 * 1024 * 1024 }), { format: 'json' }).memory).toBe(32 * 1024 * 1024);
  });
});

describe('every rule has its message, naming the first failing field', () => {
  test.each([
    ['memory: 256MiB', 'name: is required'],
    ['name: web1', 'memory: is required'],
    ['name: "-web"\nmemory: 64M', 'name: must be 1-64 letters, digits, "_", "." or "-", starting with a letter or digit, got "-web"'],
    [`name: ${'a'.repeat(65)}\nmemory: 64M`, 'name: must be 1-64 letters'],
    ['name: 5\nmemory: 64M', 'name: must be a string, got 5'],
    ['name: a\nmemory: 1KiB', 'memory: must be at least 16MiB, got "1KiB"'],
    ['name: a\nmemory: lots', 'memory: must be a size such as 256MiB or 1GiB, got "lots"'],
    ['name: a\nmemory: 16.5MiB', 'memory: must be a size such as 256MiB or 1GiB, got "16.5MiB"'],
    ['name: a\nmemory: 1500KiB', 'memory: must be at least 16MiB'],
    ['name: a\nmemory: 17000KiB', 'memory: must be a whole number of 1MiB, got "17000KiB"'],
    ['name: a\nmemory: 64PiB', 'memory: must be a size such as 256MiB or 1GiB, got "64PiB"'],
    ['name: a\nmemory: 100TiB', 'memory: must be at most 16TiB, got "100TiB"'],
    ['name: a\nmemory: [1]', 'memory: must be a size such as 256MiB or 1GiB, got [1]'],
    [`${base}uuid: nope`, 'uuid: must be a UUID like'],
    [`${base}vcpus: 0`, 'vcpus: must be at least 1, got 0'],
    [`${base}vcpus: 1000`, 'vcpus: must be at most 255, got 1000'],
    [`${base}vcpus: 1.5`, 'vcpus: must be an integer, got 1.5'],
    [`${base}vcpus: "2"`, 'vcpus: must be an integer, got "2"'],
    [`${base}machine: "pc,accel=kvm"`, 'machine: must be a machine type name like pc or q35, got "pc,accel=kvm"'],
    [`${base}cpu: "host,+vmx"`, 'cpu: must be a CPU model name like qemu64, max or host, got "host,+vmx"'],
    [`${base}accel: hvf`, 'accel: must be one of auto, kvm, tcg, got "hvf"'],
    [`${base}cpu: host\naccel: tcg`, 'cpu: host needs KVM; with accel: tcg use max'],
    [`${base}boot: {loader: pxe}`, 'boot.loader: must be one of direct, disk, guest, got "pxe"'],
    [`${base}boot: {}`, 'boot.kernel: is required'],
    [`${base}boot: kernel`, 'boot: must be a mapping, got "kernel"'],
    [`${base}boot: {kernel: /k, entry: 1}`, 'boot.entry: is not a known field'],
    [`${base}boot: {loader: disk, disk: 0}`, 'boot.disk: must be the index of a disk (there are no disks), got 0'],
    [`${base}boot: {loader: disk, disk: -1}`, 'boot.disk: must be at least 0, got -1'],
    [`${base}boot: {loader: guest, kernel: vmlinuz}`, 'boot.kernel: must be an absolute path inside the guest'],
    [`${base}boot: {loader: guest, kernel: /k, entry: x}`, 'boot.kernel: cannot be combined with boot.entry, got "/k"'],
    [`${base}boot: {loader: guest, initrd: /i}`, 'boot.initrd: needs boot.kernel, got "/i"'],
    [`${base}boot: {loader: guest, entry: ""}`, 'boot.entry: must not be empty, got ""'],
    [`${base}boot: {loader: guest, entry: [1]}`, 'boot.entry: must be a string or an integer, got [1]'],
    [`${base}boot: {loader: disk, disk: vdb}\ndisks: [{source: /a, format: raw}]`, 'boot.disk: must be the id of a disk (vda), got "vdb"'],
    [`${base}boot: {loader: disk, disk: "1"}\ndisks: [{source: /a, format: raw}]`, 'boot.disk: must be a disk id (letters, digits, "_" or "-", starting with a letter), got "1"'],
    [`${base}boot: {kernel: "/k", cmdline: "a\\nb"}`, 'boot.cmdline: must not contain newline or NUL, got "a\\nb"'],
    [`${base}boot: {kernel: "/k\\u0000"}`, 'boot.kernel: must be a path without newline or NUL'],
    [`${base}boot: {kernel: ""}`, 'boot.kernel: must not be empty, got ""'],
    [`${base}disks: {}`, 'disks: must be a list, got {}'],
    [`${base}disks: [{source: /a}]`, 'disks[0].format: is required'],
    [`${base}disks: [{source: /a, format: raw}, {source: /b, format: vmdk}]`, 'disks[1].format: must be one of raw, qcow2, got "vmdk"'],
    [`${base}disks: [{source: /a, format: raw, bus: sata}]`, 'disks[0].bus: must be one of virtio, ide, scsi, got "sata"'],
    [`${base}disks: [{source: /a, format: raw, cache: directsink}]`, 'disks[0].cache: must be one of none, writeback, writethrough, directsync, unsafe'],
    [`${base}disks: [{source: /a, format: raw, readonly: yes}]`, 'disks[0].readonly: must be true or false, got "yes"'],
    [`${base}disks: [{source: /a, format: raw, bus: ide, readonly: true}]`, 'disks[0].readonly: is not supported on the ide bus'],
    [`${base}disks: [{format: raw}]`, 'disks[0]: must name exactly one of source and volume, got neither'],
    [`${base}disks: [{source: /a, volume: p/v, format: raw}]`, 'disks[0]: must name exactly one of source and volume, got both'],
    [`${base}disks: [{volume: ../etc, format: raw}]`, 'disks[0].volume: must be "pool/volume"'],
    [`${base}disks: [{volume: p/../../x, format: raw}]`, 'disks[0].volume: must be "pool/volume"'],
    [`${base}disks: [{source: "/a\\nb", format: raw}]`, 'disks[0].source: must be a path without newline or NUL, got "/a\\nb"'],
    [`${base}disks: [{source: /a, format: raw, size: 1G}]`, 'disks[0].size: is not a known field'],
    [`${base}disks: [{id: "1a", source: /a, format: raw}]`, 'disks[0].id: must be 1-24 letters, digits, "_" or "-", starting with a letter, got "1a"'],
    [`${base}disks: [{id: "a.b", source: /a, format: raw}]`, 'disks[0].id: must be 1-24 letters'],
    [`${base}disks: [{id: ${'a'.repeat(25)}, source: /a, format: raw}]`, 'disks[0].id: must be 1-24 letters'],
    [`${base}disks: [{source: /a, format: raw}, {source: /b, format: raw, target: vdb}, {id: vdb, source: /c, format: raw, bus: scsi}]`, 'disks[2].id: "vdb" is already used by disks[1]'],
    [`${base}disks: [{source: /a, format: raw, target: vda}]\nnics: [{id: vda}]`, 'nics[0].id: "vda" is already used by disks[0]'],
    [`${base}nics: [{id: a}, {id: a}]`, 'nics[1].id: "a" is already used by nics[0]'],
    [`${base}disks: [{id: scsi0, source: /a, format: raw}]`, 'disks[0].id: "scsi0" is reserved for the scsi controller'],
    [`${base}nics: [{id: video0}]`, 'nics[0].id: "video0" is reserved for the VGA card'],
    [`${base}disks: [{source: /a, format: raw, bus: scsi, target: vdb}]`, 'disks[0].target: must start with "sd" on the scsi bus, got "vdb"'],
    [`${base}disks: [{source: /a, format: raw, target: sda}]`, 'disks[0].target: must start with "vd" on the virtio bus, got "sda"'],
    [`${base}disks: [{source: /a, format: raw, target: vdb}, {id: x, source: /b, format: raw, target: vdb}]`, 'disks[1].target: "vdb" is already used by disks[0]'],
    [`${base}disks: [{source: /a, format: raw, target: xda}]`, 'disks[0].target: must be a disk name like vda, sdb or hdc, got "xda"'],
    [`${base}disks: [{source: /a, format: raw, target: vdabc}]`, 'disks[0].target: must be a disk name like vda, sdb or hdc'],
    [`${base}disks: [{source: /a, format: raw, bus: scsi}]\ncontrollers: {scsi: none}`, 'disks[0].bus: needs the scsi controller, which controllers.scsi: none leaves out, got "scsi"'],
    [`${base}controllers: {scsi: lsilogic}`, 'controllers.scsi: must be one of auto, none, got "lsilogic"'],
    [`${base}controllers: {ide: auto}`, 'controllers.ide: is not a known field'],
    [`${base}nics: [{model: ne2k_pci}]`, 'nics[0].model: must be one of virtio, e1000, rtl8139, got "ne2k_pci"'],
    [`${base}nics: [{mac: "52:54:00:1:2:3"}]`, 'nics[0].mac: must be a MAC address like 52:54:00:12:34:56'],
    [`${base}nics: [{mac: "01:54:00:00:00:01"}]`, 'nics[0].mac: must be a unicast address (even first octet), got "01:54:00:00:00:01"'],
    [`${base}nics: [{mac: "52:54:00:00:00:01"}, {mac: "52:54:00:00:00:01"}]`, 'nics[1].mac: must differ from nics[0].mac'],
    [`${base}nics: [{network: "br/0"}]`, 'nics[0].network: must be user or a network name'],
    [`${base}nics: [{network: lab, vhost: maybe}]`, 'nics[0].vhost: must be one of auto, on, off, got "maybe"'],
    [`${base}nics: [{network: lab, bandwidth: {inbound: 10Mfurlongs}}]`, 'nics[0].bandwidth.inbound: must be a rate like 10Mbit'],
    [`${base}nics: [{vhost: off}]`, 'nics[0].vhost: applies only to a NIC on a virtkit network (network: NAME), not to network: user'],
    [`${base}nics: [{network: user, bandwidth: {inbound: 1Mbit}}]`, 'nics[0].bandwidth: applies only to a NIC on a virtkit network'],
    [`${base}nics: [{hostfwd: "tcp::22-:22"}]`, 'nics[0].hostfwd: must be a list'],
    [`${base}nics: [{hostfwd: ["tcp::22-:22,restrict=on"]}]`, 'nics[0].hostfwd[0]: must be a forwarding rule like tcp::2222-:22'],
    [`${base}nics: [{hostfwd: ["tcp::70000-:22"]}]`, 'nics[0].hostfwd[0]: ports must be 1 to 65535, got "tcp::70000-:22"'],
    [`${base}serial: 1`, 'serial: must be true or false, got 1'],
    [`${base}graphics: spice`, 'graphics: must be one of none, vnc, got "spice"'],
    [`${base}on_poweroff: rename-restart`, 'on_poweroff: must be one of destroy, restart, preserve'],
    [`${base}on_reboot: coredump`, 'on_reboot: must be one of destroy, restart, preserve'],
    [`${base}on_crash: coredump-destroy`, 'on_crash: must be one of destroy, restart, preserve'],
    [`${base}on_host_shutdown: suspend`, 'on_host_shutdown: must be one of shutdown, destroy, none, got "suspend"'],
    [`${base}shutdown_timeout: 0`, 'shutdown_timeout: must be at least 1, got 0'],
    [`${base}qemu: {args: [1]}`, 'qemu.args[0]: must be a string, got 1'],
    [`${base}qemu: {env: {"1X": y}}`, 'qemu.env["1X"]: must be an environment variable name (letters, digits, "_"), got "1X"'],
    [`${base}qemu: {env: {X: 1}}`, 'qemu.env.X: must be a string, got 1'],
    [`${base}qemu: {cmd: []}`, 'qemu.cmd: is not a known field'],
    [`${base}colour: blue`, 'colour: is not a known field'],
    ['- a', 'definition: must be a mapping, got ["a"]'],
    ['', 'definition: must be a mapping, got null'],
  ])('%s', (yaml, message) => {
    const err = errorOf(yaml);
    expect(err.code).toBe('definition.invalid');
    expect(err.message.startsWith(message), `${err.message} should start with ${message}`).toBe(true);
    expect(err.message.startsWith(`${String(err.data['path'])}: `)).toBe(true);
    expect(typeof err.data['rule']).toBe('string');
  });

  test('the first failing field is named, in schema order', () => {
    expect(errorOf('name: "a b"\nmemory: 1K\nvcpus: 0').message).toMatch(/^name: /);
    expect(errorOf('name: a\nmemory: 1K\nvcpus: 0').message).toMatch(/^memory: /);
  });

  test('data carries the dotted path and the rule', () => {
    expect(errorOf(`${base}disks: [{source: /a, format: raw}, {source: /b, format: vmdk}]`).data).toEqual({ path: 'disks[1].format', rule: 'enum' });
  });

  test('JSON syntax errors are definition errors too', () => {
    const err = errorOf('{"name": ', 'json');
    expect(err.code).toBe('definition.invalid');
    expect(err.message).toMatch(/^line 1, column 10: invalid JSON: /);
  });

  test('a document with too many aliases is refused, not expanded', () => {
    const lines = ['a0: &a0 [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 12; i++) lines.push(`a${i}: &a${i} [${Array(10).fill(`*a${i - 1}`).join(', ')}]`);
    const err = errorOf(`${base}${lines.join('\n')}\n`);
    expect(err.code).toBe('definition.invalid');
  });

  test('a huge document is refused before parsing', () => {
    expect(errorOf(`${base}# ${'x'.repeat(2 * 1024 * 1024)}\n`).message).toMatch(/^definition: must be at most 1MiB/);
  });
});

describe('paths', () => {
  test('relative host paths resolve against baseDir; guest paths and absolute paths do not', () => {
    const def = parse(`${base}boot: {kernel: k/vmlinuz, initrd: ../initrd}\ndisks: [{source: disk.qcow2, format: qcow2}, {source: /abs.raw, format: raw}]`, '/defs/web');
    expect(def.boot).toMatchObject({ kernel: '/defs/web/k/vmlinuz', initrd: '/defs/initrd' });
    expect(def.disks.map((d) => d.source)).toEqual(['/defs/web/disk.qcow2', '/abs.raw']);
  });

  test('without baseDir relative paths stay as written', () => {
    expect(parse(`${base}disks: [{source: disk.qcow2, format: qcow2}]`).disks[0]?.source).toBe('disk.qcow2');
  });

  const dir = mkdtempSync(join(tmpdir(), 'virtkit-conf-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('loadDefinition resolves against the file\'s directory and reads .json as JSON', async () => {
    writeFileSync(join(dir, 'g.yaml'), `${base}boot: {kernel: vmlinuz}\n`);
    writeFileSync(join(dir, 'g.json'), JSON.stringify({ name: 'j', memory: '64MiB', disks: [{ source: 'd.raw', format: 'raw' }] }));
    expect((await loadDefinition(join(dir, 'g.yaml'))).boot).toMatchObject({ kernel: join(dir, 'vmlinuz') });
    expect((await loadDefinition(join(dir, 'g.json'))).disks[0]?.source).toBe(join(dir, 'd.raw'));
  });

  test('loadDefinition of a missing file is definition.not-found', async () => {
    const err: unknown = await loadDefinition(join(dir, 'absent.yaml')).catch((e: unknown) => e);
    expect(isVirtkitError(err, 'definition.not-found')).toBe(true);
  });
});

describe('round trip and idempotence', () => {
  const full = `name: full
uuid: 6f1c3a52-3d3e-4c43-9a4e-0d1f2e3c4b5a
memory: 1536MiB
vcpus: 2
cpu: max
boot: {kernel: /boot/vmlinuz, initrd: /boot/initrd, cmdline: "console=ttyS0 a=\\"b c\\""}
disks: [{source: /a.qcow2, format: qcow2, bus: scsi, cache: none}, {volume: p/v, format: raw, readonly: true}]
nics: [{model: e1000, hostfwd: ["tcp::2222-:22"]}]
graphics: vnc
qemu: {args: [-no-hpet], env: {X: "1"}}
`;

  test.each(['yaml', 'json'] as const)('format %s then parse gives the same definition', (format) => {
    const def = parse(full);
    const text = formatDefinition(def, format);
    expect(parseDefinition(text, { format })).toEqual(def);
    expect(text).toContain('1536MiB');
  });

  test('validating a normalized definition changes nothing', () => {
    const def = parse(full);
    expect(validateDefinition(structuredClone(def))).toEqual(def);
    expect(validateDefinition(JSON.parse(JSON.stringify(def)))).toEqual(def);
  });

  test('validateDefinition does not modify its argument', () => {
    const doc = { name: 'a', memory: '64MiB', nics: [{}] };
    const copy = structuredClone(doc);
    validateDefinition(doc);
    expect(doc).toEqual(copy);
  });
});

describe('stable device names', () => {
  const mixed = `${base}disks:
  - {source: /a, format: raw}
  - {source: /b, format: raw, bus: scsi}
  - {source: /c, format: raw, bus: ide}
  - {source: /d, format: raw}
  - {source: /e, format: raw, bus: scsi}
nics: [{}, {}]
`;

  test('missing targets are the next free name on each bus, ids are the targets, NICs are netN', () => {
    const def = parse(mixed);
    expect(def.disks.map((d) => [d.id, d.target])).toEqual([['vda', 'vda'], ['sda', 'sda'], ['hda', 'hda'], ['vdb', 'vdb'], ['sdb', 'sdb']]);
    expect(def.nics.map((n) => n.id)).toEqual(['net0', 'net1']);
  });

  test('generated names step over the names given, whatever device uses them', () => {
    const def = parse(`${base}disks: [{source: /a, format: raw, target: vda}, {source: /b, format: raw}, {id: vdb, source: /c, format: raw}]
nics: [{}, {id: net0}, {}]`);
    // disks[2] has an id but no target: it still gets one, and neither name is taken twice.
    expect(def.disks.map((d) => [d.id, d.target])).toEqual([['vda', 'vda'], ['vdc', 'vdc'], ['vdb', 'vdd']]);
    expect(def.nics.map((n) => n.id)).toEqual(['net1', 'net0', 'net2']);
  });

  test('removing the first disk or NIC of a normalized definition renames no other device', () => {
    const def = parse(`${mixed}boot: {loader: disk, disk: 3}\n`);
    expect(def.boot).toEqual({ loader: 'disk', disk: 'vdb' });
    const removed = structuredClone(def);
    removed.disks.shift();
    removed.nics.shift();
    const again = validateDefinition(removed);
    expect(again.disks.map((d) => [d.id, d.target])).toEqual(def.disks.slice(1).map((d) => [d.id, d.target]));
    expect(again.nics.map((n) => n.id)).toEqual(['net1']);
    expect(again.boot).toEqual({ loader: 'disk', disk: 'vdb' });
    // A disk added afterwards takes the freed name, not one of the kept ones.
    const added = validateDefinition({ ...again, disks: [...again.disks, { source: '/f', format: 'raw' }], nics: [...again.nics, {}] });
    expect(added.disks.map((d) => d.id)).toEqual(['sda', 'hda', 'vdb', 'sdb', 'vda']);
    expect(added.nics.map((n) => n.id)).toEqual(['net1', 'net0']);
  });

  test('removing the boot disk leaves boot.disk naming a disk that is gone', () => {
    const def = parse(`${mixed}boot: {loader: disk, disk: sda}\n`);
    const removed = structuredClone(def);
    removed.disks.splice(1, 1);
    expect(() => validateDefinition(removed)).toThrow('boot.disk: must be the id of a disk (vda, hda, vdb, sdb), got "sda"');
  });

  test('target names follow libvirt: a..z, then aa..zz', () => {
    expect([0, 1, 25, 26, 27, 51, 52, 701].map((i) => targetName('virtio', i))).toEqual(['vda', 'vdb', 'vdz', 'vdaa', 'vdab', 'vdaz', 'vdba', 'vdzz']);
    for (let i = 0; i < 702; i++) expect(targetIndex(targetName('scsi', i))).toBe(i);
    expect(targetIndex('hdd')).toBe(3);
  });

  test('a definition with 64 disks on one bus gets 64 distinct targets', () => {
    const disks = Array.from({ length: 64 }, (_, i) => ({ source: `/d${i}`, format: 'raw', bus: 'scsi' }));
    const def = validateDefinition({ name: 'a', memory: '64MiB', disks });
    expect(new Set(def.disks.map((d) => d.target)).size).toBe(64);
    expect(def.disks[63]?.target).toBe('sdbl');
  });
});

describe('sizes', () => {
  test('parseSize and formatSize', () => {
    expect(parseSize('256MiB')).toBe(268435456);
    expect(parseSize('1g')).toBe(1073741824);
    expect(parseSize(4096)).toBe(4096);
    expect(formatSize(268435456)).toBe('256MiB');
    expect(formatSize(1536 * 1024)).toBe('1536KiB');
    expect(formatSize(100)).toBe('100B');
    expect(() => parseSize('1.5G')).toThrow(VirtkitError);
    expect(() => parseSize('99999999999999999G')).toThrow(VirtkitError);
  });
});

describe('the schema as JSON Schema', () => {
  test('uses only standard keywords plus x- extensions, so OpenAPI documents can embed it', () => {
    const standard = new Set(['type', 'properties', 'required', 'additionalProperties', 'patternProperties', 'items', 'anyOf', 'const',
      'enum', 'pattern', 'minLength', 'maxLength', 'minimum', 'maximum', 'multipleOf', 'maxItems', 'maxProperties', 'default', 'description']);
    const unknown = new Set<string>();
    const walk = (node: unknown, inProperties: boolean): void => {
      if (Array.isArray(node)) { node.forEach((n) => walk(n, false)); return; }
      if (node === null || typeof node !== 'object') return;
      for (const [key, value] of Object.entries(node)) {
        if (!inProperties && !standard.has(key) && !key.startsWith('x-')) unknown.add(key);
        if (key === 'default' || key === 'const') continue;
        walk(value, !inProperties && (key === 'properties' || key === 'patternProperties'));
      }
    };
    walk(JSON.parse(JSON.stringify(DomainDefinitionSchema)), false);
    expect([...unknown]).toEqual([]);
  });
});
