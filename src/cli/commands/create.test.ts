/**
 * `virtkit create`'s flag specs: --disk, --nic and --graphics parsed into requests, flags into
 * a definition, schema errors named by the flag; and a bounded fuzz of the spec parsers
 * (typed errors only). The end-to-end run is test/integration/create.test.ts.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, describe, expect, test } from 'vitest';
import { isVirtkitError } from '../../util/errors.js';
import { exitCodeFor, ExitCodes } from '../exit-codes.js';
import { runCli, type CliRun } from '../../../test/helpers/run-cli.js';
import {
  checkBootFiles, definitionFromFlags, FlagFields, fieldHelp, memoryValue, parseDiskSpec, parseGraphicsSpec, parseNicSpec, planDisks,
  register, splitSpec, validateFlags, type CreateOptions,
} from './create.js';
import { mulberry32 } from '../../../test/helpers/prng.js';

function failure(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (err) {
    if (isVirtkitError(err)) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error('expected a typed error');
}

const base: CreateOptions = { name: 'c1', memory: '256MiB', disk: [], nic: [] };

describe('create flag specs', () => {
  test('splitSpec reads ,, as a comma inside a value', () => {
    expect(splitSpec('/a,,b.qcow2,size=1G,readonly')).toEqual({ head: '/a,b.qcow2', pairs: [['size', '1G'], ['readonly', '']] });
  });

  test('--disk: a path, a new pool volume, an existing volume', () => {
    expect(parseDiskSpec('/img/a.qcow2,size=8G,bus=scsi,readonly=on')).toMatchObject({
      kind: 'path', path: '/img/a.qcow2', size: 8 * 1024 ** 3, device: { bus: 'scsi', readonly: true },
    });
    expect(parseDiskSpec('pool=images,size=4')).toMatchObject({ kind: 'pool', pool: 'images', size: 4 * 1024 ** 3 });
    expect(parseDiskSpec('vol=images/base.qcow2')).toMatchObject({ kind: 'vol', pool: 'images', volume: 'base.qcow2' });
    expect(failure(() => parseDiskSpec('/a.img,pool=p')).message).toMatch(/--disk \/a.img,pool=p: must name exactly one of/);
    expect(failure(() => parseDiskSpec('/a.img,colour=red')).message).toMatch(/unknown key "colour"/);
    expect(failure(() => parseDiskSpec('/a.img,size=lots')).message).toMatch(/size= must be a size/);
    expect(failure(() => parseDiskSpec('vol=images')).message).toMatch(/vol= must be POOL\/VOLUME/);
  });

  test('--nic: user with forwards; anything else is refused naming the flag', () => {
    expect(parseNicSpec('user,hostfwd=tcp::2222-:22,hostfwd=udp::5353-:53,model=e1000')).toEqual({
      model: 'e1000', network: 'user', hostfwd: ['tcp::2222-:22', 'udp::5353-:53'],
    });
    expect(failure(() => parseNicSpec('bridge=br0')).message).toMatch(/^--nic bridge=br0: virtkit has no bridges/);
    expect(failure(() => parseNicSpec('tap')).code).toBe('argument.invalid');
  });

  test('--graphics and --memory', () => {
    expect(parseGraphicsSpec('vnc,password=on')).toEqual({ graphics: 'vnc', vnc_password: true });
    expect(failure(() => parseGraphicsSpec('spice')).message).toMatch(/must be vnc or none/);
    expect(memoryValue('512')).toBe('512MiB');
    expect(memoryValue('1GiB')).toBe('1GiB');
  });

  test('pool volumes are named after the domain, avoiding names taken', () => {
    const requests = [parseDiskSpec('pool=images,size=1G'), parseDiskSpec('pool=images,size=1G,format=raw')];
    const plan = planDisks(requests, 'web', new Map([['images', new Set(['web.qcow2'])]]), []);
    expect(plan.map((p) => p.field['volume'])).toEqual(['images/web-1.qcow2', 'images/web.raw']);
    expect(plan.every((p) => p.create?.kind === 'volume')).toBe(true);
    expect(failure(() => planDisks([parseDiskSpec('/tmp/none/a.qcow2,size=1G'), parseDiskSpec('/tmp/none/a.qcow2,size=2G')], 'web', new Map(), [])).message)
      .toMatch(/is already another --disk/);
  });

  test('flags become a definition; boots exclude each other; schema errors name the flag', () => {
    const o: CreateOptions = { ...base, kernel: '/k', initrd: '/i', cmdline: 'console=ttyS0', vcpus: '2', nic: ['user'], graphics: 'vnc' };
    const def = validateFlags(definitionFromFlags(o, []), o);
    expect(def.boot).toEqual({ loader: 'direct', kernel: '/k', initrd: '/i', cmdline: 'console=ttyS0' });
    expect(def.vcpus).toBe(2);
    expect(def.nics[0]!.mac).toMatch(/^52:54:00:/);
    expect(failure(() => definitionFromFlags({ ...base, kernel: '/k', guestBoot: true }, [])).message).toMatch(/--kernel and --guest-boot exclude each other/);
    expect(failure(() => definitionFromFlags({ ...base, initrd: '/i' }, [])).message).toMatch(/--initrd needs --kernel/);
    const badMemory = { ...base, memory: '8MiB' };
    expect(failure(() => validateFlags(definitionFromFlags(badMemory, []), badMemory)).message).toMatch(/^--memory: memory: must be at least 16MiB/);
    const badCrash = { ...base, onCrash: 'explode' };
    expect(failure(() => validateFlags(definitionFromFlags(badCrash, []), badCrash)).message).toMatch(/^--on-crash: on_crash: must be one of/);
  });

  test('every flag has help from its schema field', () => {
    for (const f of FlagFields) expect(fieldHelp(f.field, f.note), f.flags).toMatch(new RegExp(`\\[${f.field.replace(/[.[\]]/g, '\\$&')}\\]$`));
  });

  test('--help lists every flag with its field', () => {
    const program = new Command('virtkit');
    register(program);
    const help = program.commands.find((c) => c.name() === 'create')!.helpInformation().replace(/\s+/g, ' ');
    for (const f of FlagFields) {
      expect(help, f.flags).toContain(f.flags.split(' ')[0]!);
      expect(help, f.flags).toContain(`[${f.field}]`);
    }
  });
});

describe('create checks everything before it makes anything', () => {
  const dir = mkdtempSync(join(tmpdir(), 'virtkit-create-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const nowhere = join(dir, 'no.sock');

  const run = (args: string[]): Promise<CliRun> => runCli(['create', ...args]);

  test('a pool volume name the pool would refuse is refused by its rule, --print included', async () => {
    expect(failure(() => planDisks([parseDiskSpec('pool=images,name=x.raw,format=qcow2,size=1G')], 'web', new Map(), [])))
      .toMatchObject({ code: 'volume.invalid-name', message: expect.stringMatching(/^--disk pool=images,name=x.raw: "x.raw" declares format raw/) as unknown });
    expect(failure(() => planDisks([parseDiskSpec('pool=images,name=.hidden.qcow2,size=1G')], 'web', new Map(), [])).code).toBe('volume.invalid-name');
    expect(failure(() => planDisks([parseDiskSpec('vol=images/noext')], 'web', new Map(), [])).code).toBe('volume.invalid-name');
    expect(failure(() => planDisks([parseDiskSpec('pool=bad pool,size=1G')], 'web', new Map(), [])).code).toBe('pool.invalid');
    const printed = await run(['--name', 'web', '--memory', '64MiB', '--disk', 'pool=images,name=x.raw,format=qcow2,size=1G', '--print']);
    expect(printed.code).toBe(exitCodeFor('volume.invalid-name'));
    expect(printed.stdout).toBe('');
  });

  test('vol= naming a volume the pool does not have is volume.not-found once the pool is known', () => {
    const taken = new Map([['images', new Set(['base.qcow2'])]]);
    expect(planDisks([parseDiskSpec('vol=images/base.qcow2')], 'web', taken, [])[0]!.field['volume']).toBe('images/base.qcow2');
    expect(failure(() => planDisks([parseDiskSpec('vol=images/gone.qcow2')], 'web', taken, [])))
      .toMatchObject({ code: 'volume.not-found', message: expect.stringMatching(/pool images has no volume gone.qcow2/) as unknown });
  });

  test('--kernel and --initrd that do not exist fail --define before the daemon is asked', async () => {
    const kernel = join(dir, 'vmlinuz');
    writeFileSync(kernel, 'k');
    expect(() => checkBootFiles({ kernel })).not.toThrow();
    expect(failure(() => checkBootFiles({ kernel, initrd: join(dir, 'none.img') })).message).toMatch(/^--initrd .*none.img: no such file on this host/);
    const defined = await run(['--name', 'web', '--memory', '64MiB', '--kernel', join(dir, 'nokernel'), '--define', '-c', nowhere]);
    expect(defined.code).toBe(ExitCodes.invalidInput);
    expect(defined.stderr).toMatch(/--kernel .*nokernel: no such file/);
  });

  test('a missing --name or --memory is a usage error (exit 2)', async () => {
    expect((await run(['--memory', '64MiB', '--print'])).code).toBe(ExitCodes.usage);
    expect((await run(['--name', 'web', '--print'])).code).toBe(ExitCodes.usage);
  });
});

test('fuzz: 5,000 mutated --disk and --nic specs give a request or argument.invalid', () => {
  const random = mulberry32(0x11b);
  const seeds = ['/img/a.qcow2,size=8G,bus=virtio,format=qcow2', 'pool=images,size=4G,name=x.raw', 'vol=p/v.qcow2,readonly=on', 'user,hostfwd=tcp::2222-:22,mac=52:54:00:00:00:01'];
  const pieces = [',', ',,', '=', 'size=', 'pool=', 'vol=', '/', 'G', '1e400', '-1', '\u0000', '\n', 'readonly=maybe', 'hostfwd=', '__proto__=1', 'constructor='];
  for (let i = 0; i < 5000; i++) {
    let text = seeds[i % seeds.length]!;
    for (let e = 0; e < 1 + Math.floor(random() * 3); e++) {
      const at = Math.floor(random() * (text.length + 1));
      text = random() < 0.6 ? text.slice(0, at) + pieces[Math.floor(random() * pieces.length)]! + text.slice(at) : text.slice(0, at) + text.slice(at + 1 + Math.floor(random() * 5));
    }
    for (const parse of [parseDiskSpec, parseNicSpec]) {
      try {
        parse(text);
      } catch (err) {
        if (!isVirtkitError(err) || err.code !== 'argument.invalid') throw new Error(`${JSON.stringify(text)}: ${String(err)}`);
      }
    }
  }
});
