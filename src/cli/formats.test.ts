/**
 * One format rule for every command that opens an image (docs/images.md): the option, else
 * the file name's extension, never the content. In-process, with images qemu-img makes.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, test, vi } from 'vitest';
import { ExitCodes } from './exit-codes.js';
import { runCli as run } from '../../test/helpers/run-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'virtkit-formats-'));
const qcow2 = join(dir, 'disk.qcow2');
const unnamed = join(dir, 'disk');
const raw = join(dir, 'disk.img');
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());

beforeAll(() => {
  const r = spawnSync('qemu-img', ['create', '-q', '-f', 'qcow2', qcow2, '1M'], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  copyFileSync(qcow2, unnamed);
  writeFileSync(raw, Buffer.alloc(1024 * 1024));
});

describe('the format rule', () => {
  test('img info and inspect agree: a .qcow2 name is qcow2, a .img name is raw', async () => {
    const info = await run(['img', 'info', qcow2, '--json']);
    expect(info.code, info.stderr).toBe(0);
    expect(JSON.parse(info.stdout)).toMatchObject({ format: 'qcow2', 'virtual-size': 1024 * 1024 });
    const inspected = await run(['inspect', qcow2, '--json']);
    expect(inspected.code, inspected.stderr).toBe(0);
    expect(JSON.parse(inspected.stdout)).toMatchObject({ format: 'qcow2', size: 1024 * 1024 });
    const rawInfo = await run(['img', 'info', raw, '--json']);
    expect(rawInfo.code, rawInfo.stderr).toBe(0);
    expect(JSON.parse(rawInfo.stdout)).toMatchObject({ format: 'raw' });
  });

  test('the option wins over the name', async () => {
    const r = await run(['inspect', qcow2, '--format', 'raw', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ format: 'raw' });
  });

  test.each([
    [['img', 'info', unnamed], '-f'],
    [['img', 'map', unnamed], '-f'],
    [['inspect', unnamed], '--format'],
    [['bootinfo', unnamed], '--format'],
    [['fs', 'ls', unnamed, '/'], '--format'],
    [['fs', 'ls', `${unnamed}:1`, '/'], '--format'],
    [['nbd', unnamed, '--socket', join(dir, 'n.sock')], '-f'],
  ])('%j: neither option nor name says, so argument.invalid naming %s and the extensions', async (args, flag) => {
    const r = await run(args);
    expect(r.code).toBe(ExitCodes.invalidInput);
    expect(r.stderr).toContain('argument.invalid');
    expect(r.stderr).toContain(`pass ${flag} raw|qcow2`);
    expect(r.stderr).toContain('.qcow2');
    expect(r.stderr).not.toContain('internal error');
  });

  test('a format the command cannot read is refused with the list', async () => {
    const r = await run(['inspect', qcow2, '--format', 'vhdx']);
    expect(r.code).toBe(ExitCodes.invalidInput);
    expect(r.stderr).toContain('--format must be one of raw, qcow2, vmdk, vdi');
  });
});
