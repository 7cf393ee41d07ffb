import { describe, expect, test } from 'vitest';
import { LifecycleActions, parseDefinition, type DomainDefinition } from '../../conf/index.js';
import { isVirtkitError, VirtkitError } from '../../util/errors.js';
import {
  blockdevProps, buildCommand, CacheFlags, diskDeviceProps, keyValueOption, lifecycleActions, netdevProps, nicDeviceProps,
  optionValue, runPaths, type CommandContext,
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
      const nodes = blockdevProps(disk, 0, '/a');
      const device = diskDeviceProps(disk, 0, { machine: 'pc', busIndex: 0 });
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
    const disk = def('disks: [{source: /a, format: qcow2, readonly: true}]').disks[0];
    if (disk === undefined) throw new Error('no disk');
    const nodes = blockdevProps(disk, 3, '/a');
    expect(nodes.file).toMatchObject({ driver: 'file', filename: '/a', 'node-name': 'disk3-file', 'read-only': true });
    expect(nodes.format).toMatchObject({ driver: 'qcow2', 'node-name': 'disk3-format', file: 'disk3-file', 'read-only': true });
  });

  test('ide slots: pc has 2 buses x 2 units, q35 six ports; other machines have none', () => {
    const disk = def('disks: [{source: /a, format: raw, bus: ide}]').disks[0];
    if (disk === undefined) throw new Error('no disk');
    const slot = (machine: string, busIndex: number) => {
      const p = diskDeviceProps(disk, busIndex, { machine, busIndex });
      return `${String(p['bus'])}/${String(p['unit'])}`;
    };
    expect([0, 1, 2, 3].map((i) => slot('pc', i))).toEqual(['ide.0/0', 'ide.0/1', 'ide.1/0', 'ide.1/1']);
    expect([0, 5].map((i) => slot('pc-q35-7.2', i))).toEqual(['ide.0/0', 'ide.5/0']);
    expect(() => slot('pc', 4)).toThrow(/at most 4 ide disks fit machine pc/);
    expect(() => slot('q35', 6)).toThrow(/at most 6 ide disks/);
    expect(() => slot('microvm', 0)).toThrow(/ide disks need machine pc or q35/);
  });

  test('NIC props serve -netdev/-device and netdev_add/device_add alike', () => {
    const [a, b] = def('nics: [{mac: "52:54:00:00:00:0a", hostfwd: ["tcp::1-:2"]}, {model: rtl8139, mac: "52:54:00:00:00:0b"}]').nics;
    if (a === undefined || b === undefined) throw new Error('no nics');
    expect(netdevProps(a, 0)).toEqual({ type: 'user', id: 'net0', hostfwd: [{ str: 'tcp::1-:2' }] });
    expect(netdevProps(b, 1)).toEqual({ type: 'user', id: 'net1' });
    expect(nicDeviceProps(b, 1)).toEqual({ driver: 'rtl8139', id: 'nic1', netdev: 'net1', mac: '52:54:00:00:00:0b' });
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
