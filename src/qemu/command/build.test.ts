import { describe, expect, test } from 'vitest';
import { LifecycleActions, parseDefinition, type DomainDefinition } from '../../conf/index.js';
import { isVirtkitError, VirtkitError } from '../../util/errors.js';
import {
  blockdevProps, buildCommand, CacheFlags, diskDeviceProps, diskNodeNames, diskPlacementProblem, hasScsiController, keyValueOption,
  lifecycleActions, netdevProps, nicDeviceProps, optionValue, runPaths, type CommandContext,
} from './index.js';

const ctx: CommandContext = { binary: 'qemu-system-x86_64', accel: 'tcg', runDir: '/run/vk/g' };

function def(extra = ''): DomainDefinition {
  return parseDefinition(`name: g\nuuid: 00000000-0000-4000-8000-000000000001\nmemory: 128MiB\n${extra}`);
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    Object.freeze(value);
    for (const item of Object.values(value)) deepFreeze(item);
  }
  return value;
}

/** QEMU's QemuOpts reading of "a=b,c=d": split on single commas, ",," is a literal comma. */
function parseQemuOpts(text: string): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  let i = 0;
  while (i < text.length) {
    let part = '';
    while (i < text.length) {
      if (text[i] === ',' && text[i + 1] === ',') { part += ','; i += 2; } else if (text[i] === ',') { i++; break; } else part += text[i++];
    }
    const eq = part.indexOf('=');
    pairs.push(eq < 0 ? [part, ''] : [part.slice(0, eq), part.slice(eq + 1)]);
  }
  return pairs;
}

describe('purity', () => {
  test('the same definition and context give the same command, and the definition is not touched', () => {
    const d = deepFreeze(def('disks: [{source: /a.qcow2, format: qcow2, bus: scsi}]\nnics: [{hostfwd: ["tcp::2222-:22"]}]\nqemu: {env: {A: b}}\n'));
    const first = buildCommand(d, ctx);
    expect(buildCommand(d, ctx)).toEqual(first);
    first.env['B'] = 'c';
    expect(buildCommand(d, ctx).env).toEqual({ A: 'b' });
  });
});

describe('key=value escaping', () => {
  test.each(['/run/a,b', ',,', 'a=b,c=d', 'x,id=evil,path=/etc/passwd', 'plain', ' spaces and "quotes" '])('%j stays one value', (value) => {
    const option = `socket,id=qmp,${keyValueOption([['path', value]], 'path')},server=on`;
    expect(parseQemuOpts(option)).toEqual([['socket', ''], ['id', 'qmp'], ['path', value], ['server', 'on']]);
  });

  test('no run directory can add or change an option (random hostile names)', () => {
    let seed = 7;
    const random = (): number => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };
    const pieces = [',', ',,', '=', 'id=x', 'path=/etc', 'server=off', ' ', '"', "'", '\\', 'a', '/', 'wait=on', 'logfile='];
    for (let i = 0; i < 500; i++) {
      const runDir = `/run/${Array.from({ length: 1 + Math.floor(random() * 6) }, () => pieces[Math.floor(random() * pieces.length)]).join('')}`;
      const { argv } = buildCommand(def('graphics: vnc'), { ...ctx, runDir });
      const paths = runPaths(runDir);
      const chardevs = argv.filter((_, j) => argv[j - 1] === '-chardev').map(parseQemuOpts);
      expect(chardevs[0]).toEqual([['socket', ''], ['id', 'qmp'], ['path', paths.qmpSocket], ['server', 'on'], ['wait', 'off']]);
      expect(chardevs[1]).toEqual([['socket', ''], ['id', 'console'], ['path', paths.consoleSocket], ['server', 'on'], ['wait', 'off'],
        ['logfile', paths.consoleLog], ['logappend', 'on']]);
      expect(parseQemuOpts(argv[argv.indexOf('-vnc') + 1] ?? '')).toEqual([['vnc', `unix:${paths.vncSocket}`]]);
    }
  });

  test('newline, carriage return and NUL are refused', () => {
    for (const bad of ['a\nb', 'a\rb', 'a\0b']) {
      expect(() => optionValue(bad, 'path')).toThrow(VirtkitError);
      expect(() => buildCommand(def(), { ...ctx, runDir: `/run/${bad}` })).toThrow(/run directory must not contain newline or NUL/);
    }
  });
});

describe('props builders', () => {
  test('cache modes map to cache.direct / cache.no-flush and the device write cache', () => {
    const rows = Object.entries(CacheFlags).map(([cache, flags]) => {
      const disk = def(`disks: [{source: /a, format: raw, cache: ${cache}}]`).disks[0];
      if (disk === undefined) throw new Error('no disk');
      const nodes = blockdevProps(disk, '/a');
      const device = diskDeviceProps(disk, { machine: 'pc' });
      expect(nodes.format['cache']).toEqual(nodes.file['cache']);
      return [cache, nodes.file['cache'], device['write-cache'], flags.writeCache];
    });
    expect(rows).toEqual([
      ['writeback', { direct: false, 'no-flush': false }, 'on', true],
      ['none', { direct: true, 'no-flush': false }, 'on', true],
      ['writethrough', { direct: false, 'no-flush': false }, 'off', false],
      ['directsync', { direct: true, 'no-flush': false }, 'off', false],
      ['unsafe', { direct: false, 'no-flush': true }, 'on', true],
    ]);
  });

  test('read-only disks are read-only on both nodes', () => {
    const disk = def('disks: [{id: data, source: /a, format: qcow2, readonly: true}]').disks[0];
    if (disk === undefined) throw new Error('no disk');
    const nodes = blockdevProps(disk, '/a');
    expect(nodes.file).toMatchObject({ driver: 'file', filename: '/a', 'node-name': 'data-file', 'read-only': true });
    expect(nodes.format).toMatchObject({ driver: 'qcow2', 'node-name': 'data-format', file: 'data-file', 'read-only': true });
  });

  test('names come from the disk id, whatever its position', () => {
    const [a, b] = def('disks: [{source: /a, format: raw}, {id: "x_1", source: /b, format: raw, bus: scsi, target: sdc}]').disks;
    if (a === undefined || b === undefined) throw new Error('no disks');
    expect(diskDeviceProps(a, { machine: 'pc' })).toMatchObject({ id: 'vda', drive: 'vda-format' });
    expect(diskDeviceProps(b, { machine: 'pc' })).toMatchObject({ id: 'x_1', drive: 'x_1-format', bus: 'scsi0.0', 'scsi-id': 2, lun: 0 });
    expect(diskNodeNames(b)).toEqual({ file: 'x_1-file', format: 'x_1-format' });
    // The longest id still gives node names QEMU accepts (at most 31 characters).
    expect(diskNodeNames({ id: 'a'.repeat(24) }).format).toHaveLength(31);
  });

  test('ide slots follow the target: pc has 2 buses x 2 units, q35 six ports; other machines have none', () => {
    const disk = def('disks: [{source: /a, format: raw, bus: ide}]').disks[0];
    if (disk === undefined) throw new Error('no disk');
    const slot = (machine: string, target: string) => {
      const p = diskDeviceProps({ ...disk, target }, { machine });
      return `${String(p['bus'])}/${String(p['unit'])}`;
    };
    expect(['hda', 'hdb', 'hdc', 'hdd'].map((t) => slot('pc', t))).toEqual(['ide.0/0', 'ide.0/1', 'ide.1/0', 'ide.1/1']);
    expect(['hda', 'hdf'].map((t) => slot('pc-q35-7.2', t))).toEqual(['ide.0/0', 'ide.5/0']);
    expect(() => slot('pc', 'hde')).toThrow('disk "hda".target: is beyond the 4 ide slots of machine pc (hda to hdd), got "hde"');
    expect(() => slot('q35', 'hdg')).toThrow(/beyond the 6 ide slots of machine q35 \(hda to hdf\)/);
    expect(() => slot('microvm', 'hda')).toThrow(/ide disks need machine pc or q35/);
  });

  test('scsi targets map to SCSI ids 0 to 255', () => {
    const disk = def('disks: [{source: /a, format: raw, bus: scsi}]').disks[0];
    if (disk === undefined) throw new Error('no disk');
    expect(diskDeviceProps({ ...disk, target: 'sdiv' }, { machine: 'pc' })['scsi-id']).toBe(255);
    expect(diskPlacementProblem({ ...disk, target: 'sdiw' }, 'pc')).toBe('is beyond the 256 targets of the scsi controller (sda to sdiv)');
  });

  test('NIC props serve -netdev/-device and netdev_add/device_add alike', () => {
    const [a, b] = def('nics: [{mac: "52:54:00:00:00:0a", hostfwd: ["tcp::1-:2"]}, {id: uplink, model: rtl8139, mac: "52:54:00:00:00:0b"}]').nics;
    if (a === undefined || b === undefined) throw new Error('no nics');
    expect(netdevProps(a)).toEqual({ type: 'user', id: 'net0-netdev', hostfwd: [{ str: 'tcp::1-:2' }] });
    expect(nicDeviceProps(a)).toEqual({ driver: 'virtio-net-pci', id: 'net0', netdev: 'net0-netdev', mac: '52:54:00:00:00:0a' });
    expect(netdevProps(b)).toEqual({ type: 'user', id: 'uplink-netdev' });
    expect(nicDeviceProps(b)).toEqual({ driver: 'rtl8139', id: 'uplink', netdev: 'uplink-netdev', mac: '52:54:00:00:00:0b' });
  });
});

describe('scsi controller', () => {
  const controllers = (extra: string): string[] => buildCommand(def(extra), ctx).argv.filter((arg) => arg.includes('virtio-scsi-pci'));

  test('auto: on every machine with PCI, disks or not; elsewhere only with a scsi disk; none: never', () => {
    expect(controllers('')).toEqual(['{"driver":"virtio-scsi-pci","id":"scsi0"}']);
    expect(controllers('machine: pc-q35-7.2')).toHaveLength(1);
    expect(controllers('machine: microvm')).toEqual([]);
    expect(controllers('machine: microvm\ndisks: [{source: /a, format: raw, bus: scsi}]')).toHaveLength(1);
    expect(controllers('controllers: {scsi: none}\ndisks: [{source: /a, format: raw}]')).toEqual([]);
    expect(hasScsiController(def('controllers: {scsi: none}'))).toBe(false);
  });

  test('the controller comes before the disks, once', () => {
    const { argv } = buildCommand(def('disks: [{source: /a, format: raw, bus: scsi}, {source: /b, format: raw, bus: scsi}]'), ctx);
    const scsi = argv.findIndex((arg) => arg.includes('virtio-scsi-pci'));
    expect(scsi).toBeLessThan(argv.findIndex((arg) => arg.includes('"sda-file"')));
    expect(argv.filter((arg) => arg.includes('virtio-scsi-pci'))).toHaveLength(1);
  });
});

describe('boot disk', () => {
  test('an id or an index puts bootindex 1 on that disk only', () => {
    for (const chosen of ['1', 'sys']) {
      const { argv } = buildCommand(def(`boot: {loader: disk, disk: ${chosen}}\ndisks: [{source: /a, format: raw}, {id: sys, source: /b, format: raw}]`), ctx);
      const devices = argv.filter((arg, i) => argv[i - 1] === '-device' && arg.includes('virtio-blk-pci')).map((arg) => JSON.parse(arg) as Record<string, unknown>);
      expect(devices.map((d) => [d['id'], d['bootindex']])).toEqual([['vda', undefined], ['sys', 1]]);
    }
  });
});

describe('lifecycle mapping', () => {
  test('every combination', () => {
    for (const on_poweroff of LifecycleActions) {
      for (const on_reboot of LifecycleActions) {
        for (const on_crash of LifecycleActions) {
          const a = lifecycleActions({ on_poweroff, on_reboot, on_crash });
          expect(a.reboot).toBe(on_reboot === 'restart' ? 'reset' : 'shutdown');
          expect(a.shutdown).toBe(on_poweroff === 'destroy' && on_reboot !== 'preserve' ? 'poweroff' : 'pause');
          expect(a.panic).toBe(on_crash === 'destroy' ? 'exit-failure' : 'pause');
        }
      }
    }
  });
});

describe('buildCommand', () => {
  test('fixed options come first, passthrough args last', () => {
    const { argv } = buildCommand(def('qemu: {args: [-S, -d, int]}'), ctx);
    expect(argv.slice(0, 2)).toEqual(['-nodefaults', '-no-user-config']);
    expect(argv.slice(-3)).toEqual(['-S', '-d', 'int']);
  });

  test('default CPU follows the accelerator; an explicit one wins', () => {
    const cpu = (d: DomainDefinition, accel: 'kvm' | 'tcg') => {
      const { argv } = buildCommand(d, { ...ctx, accel });
      return argv[argv.indexOf('-cpu') + 1];
    };
    expect(cpu(def(), 'tcg')).toBe('qemu64');
    expect(cpu(def(), 'kvm')).toBe('host');
    expect(cpu(def('cpu: max'), 'kvm')).toBe('max');
  });

  test('cpu: host that accel auto resolved to TCG runs as max; under KVM it stays host', () => {
    const cpu = (accel: 'kvm' | 'tcg') => {
      const { argv } = buildCommand(def('cpu: host'), { ...ctx, accel });
      return argv[argv.indexOf('-cpu') + 1];
    };
    expect(cpu('tcg')).toBe('max');
    expect(cpu('kvm')).toBe('host');
  });

  test('the run directory holds every socket and file the interfaces name', () => {
    const { argv } = buildCommand(def('graphics: vnc'), ctx);
    const text = argv.join(' ');
    const paths = runPaths(ctx.runDir);
    for (const path of [paths.qmpSocket, paths.consoleSocket, paths.consoleLog, paths.pidFile, paths.vncSocket]) expect(text).toContain(path);
    expect(paths.qemuLog).toBe('/run/vk/g/qemu.log');
  });

  test('guest loader: definition cmdline replaces the extracted one', () => {
    const d = def('boot: {loader: guest, cmdline: "ro quiet"}');
    const { argv } = buildCommand(d, { ...ctx, bootFiles: { kernel: '/r/k', initrd: '/r/i', cmdline: 'ro' } });
    expect(argv.slice(argv.indexOf('-kernel'), argv.indexOf('-kernel') + 6)).toEqual(['-kernel', '/r/k', '-initrd', '/r/i', '-append', 'ro quiet']);
  });

  test('missing context is a typed error', () => {
    const guest = def('boot: {loader: guest}');
    expect(() => buildCommand(guest, ctx)).toThrow(expect.objectContaining({ code: 'argument.invalid' }) as Error);
    const volume = def('disks: [{volume: p/v, format: raw}]');
    let caught: unknown;
    try { buildCommand(volume, { ...ctx, volumePaths: { 'p/w': '/x' } }); } catch (err) { caught = err; }
    expect(isVirtkitError(caught, 'volume.not-found')).toBe(true);
    expect(() => buildCommand(volume, { ...ctx, volumePaths: { 'p/v': '/x\ny' } })).toThrow(/must not contain newline or NUL/);
  });

  test('machines without an ISA bus get no pvpanic device', () => {
    expect(buildCommand(def('machine: microvm'), ctx).argv.join(' ')).not.toContain('pvpanic');
    expect(buildCommand(def('machine: pc-q35-7.2'), ctx).argv.join(' ')).toContain('pvpanic');
  });
});
