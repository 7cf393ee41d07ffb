/**
 * The network service's store side, on a real SQLite store and no host networking: define,
 * the overlap and bridge checks between networks, list, autostart, undefine, and the NIC
 * checks made before any tap (unknown and inactive networks, vhost: on without the device).
 * The host side is tested in test/integration/networks.test.ts, inside a namespace.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { validateDefinition } from '../conf/index.js';
import { openStore, type Store } from '../store/index.js';
import { policerAvailable } from '../net/index.js';
import { NetworkService } from './networks.js';
import { mkdir, writeFile } from 'node:fs/promises';

let dir: string;
let store: Store;
let svc: NetworkService;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vk-netsvc-'));
  store = openStore(dir);
  svc = new NetworkService(store, dir, pino({ level: 'silent' }));
});

afterEach(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return (err as { code: string }).code + ': ' + (err as Error).message;
  }
  throw new Error('expected a refusal');
}

describe('network objects in the store', () => {
  it('define, list, autostart, undefine', async () => {
    const info = await svc.define({}, { definition: { name: 'lab', mode: 'nat', subnet: '10.5.0.0/24' } });
    expect(info).toMatchObject({ name: 'lab', mode: 'nat', active: false, autostart: false, bridge: 'vkbr-lab', domains: [] });
    expect(await svc.list({}, {})).toEqual([]);
    expect((await svc.list({}, { all: true })).map((n) => n.name)).toEqual(['lab']);
    expect((await svc.setAutostart({}, 'lab', true)).autostart).toBe(true);
    await svc.undefine({}, 'lab');
    expect(await codeOf(svc.info({}, 'lab'))).toMatch(/^network.not-found/);
  });

  it('refuses a second network on an overlapping subnet or the same bridge, and a name twice', async () => {
    await svc.define({}, { definition: { name: 'lab', mode: 'nat', subnet: '10.5.0.0/24' } });
    expect(await codeOf(svc.define({}, { definition: { name: 'lab2', mode: 'isolated', subnet: '10.5.0.0/16' } })))
      .toMatch(/^network.exists: subnet 10.5.0.0\/16 overlaps network "lab"/);
    expect(await codeOf(svc.define({}, { definition: { name: 'lab3', mode: 'nat', subnet: '10.6.0.0/24', bridge: 'vkbr-lab' } })))
      .toMatch(/^network.exists: bridge vkbr-lab/);
    expect(await codeOf(svc.define({}, { definition: { name: 'lab', mode: 'user' } }))).toMatch(/^network.exists/);
    expect(await codeOf(svc.define({}, { definition: { name: 'bad', mode: 'nat', subnet: '10.7.0.1/24' } }))).toMatch(/^network.invalid: subnet/);
    expect((await svc.list({}, { all: true })).map((n) => n.name)).toEqual(['lab']);
  });

  it('NICs: an unknown or inactive network is refused before any tap; a user-mode network is a user NIC', async () => {
    await svc.define({}, { definition: { name: 'lab', mode: 'nat', subnet: '10.5.0.0/24' } });
    await svc.define({}, { definition: { name: 'slirp', mode: 'user' } });
    const def = (network: string, vhost?: 'on') => validateDefinition({ name: 'g', memory: '64MiB', nics: [{ network, ...(vhost ? { vhost } : {}) }] });
    expect(await codeOf(svc.prepareNics('g', def('nosuch')))).toMatch(/^network.not-found: .*not defined/);
    expect(await codeOf(svc.prepareNics('g', def('lab')))).toMatch(/^network.not-found: .*not active \(net-start lab\)/);
    expect((await svc.prepareNics('g', def('slirp'))).nics[0]!.network).toBe('user');
    const user = def('user');
    expect(await svc.prepareNics('g', user)).toBe(user);
  });

  it('net-destroy of a defined but inactive network is network.invalid-state, of an unknown one network.not-found', async () => {
    await svc.define({}, { definition: { name: 'lab', mode: 'nat', subnet: '10.5.0.0/24' } });
    expect(await codeOf(svc.destroy({}, 'lab', {}))).toMatch(/^network.invalid-state: network "lab" is not active/);
    expect(await codeOf(svc.destroy({}, 'nosuch', {}))).toMatch(/^network.not-found: /);
  });

  it('vhost: on without /dev/vhost-net is refused, naming the device', async () => {
    if (existsSync('/dev/vhost-net')) return;
    await svc.define({}, { definition: { name: 'lab', mode: 'nat', subnet: '10.5.0.0/24' } });
    await store.as({}).transaction(async (tx) => { await tx.write('/network/lab/active', '1'); });
    const def = validateDefinition({ name: 'g', memory: '64MiB', nics: [{ network: 'lab', vhost: 'on' }] });
    expect(await codeOf(svc.prepareNics('g', def))).toMatch(/^operation.unsupported: .*\/dev\/vhost-net does not exist/);
  });

  it('bandwidth.outbound without act_police is refused before any tap, naming the field and the module', async () => {
    if (policerAvailable()) return;
    await svc.define({}, { definition: { name: 'lab', mode: 'nat', subnet: '10.5.0.0/24' } });
    await store.as({}).transaction(async (tx) => { await tx.write('/network/lab/active', '1'); });
    const def = validateDefinition({ name: 'g', memory: '64MiB', nics: [{ network: 'lab', bandwidth: { outbound: '1Mbit' } }] });
    expect(await codeOf(svc.prepareNics('g', def))).toMatch(/^operation.unsupported: .*bandwidth.outbound needs the kernel module act_police/);
  });

  it('finds act_police loaded, built in or loadable, and not in a kernel without it', async () => {
    const sys = join(dir, 'sys');
    const lib = join(dir, 'lib');
    await mkdir(join(lib, 'k1'), { recursive: true });
    await mkdir(sys, { recursive: true });
    expect(policerAvailable('k1', sys, lib)).toBe(false);
    await writeFile(join(lib, 'k1', 'modules.dep'), 'kernel/net/sched/sch_tbf.ko:\n');
    expect(policerAvailable('k1', sys, lib)).toBe(false);
    await writeFile(join(lib, 'k1', 'modules.builtin'), 'kernel/net/sched/act_police.ko\n');
    expect(policerAvailable('k1', sys, lib)).toBe(true);
    expect(policerAvailable('k2', sys, lib)).toBe(false);
    await mkdir(join(sys, 'act_police'));
    expect(policerAvailable('k2', sys, lib)).toBe(true);
  });
});
