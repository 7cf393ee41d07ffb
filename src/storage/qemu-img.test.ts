import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { processesWithArg } from '../../test/helpers/processes.js';
import { isVirtkitError } from '../util/errors.js';
import { createImage, fileArg, parseConvertProgress, runQemuImg } from './qemu-img.js';

describe('qemu-img wrapper', () => {
  it('parses convert -p progress, keeping the last complete figure', () => {
    expect(parseConvertProgress('    (0.00/100%)\r    (12.50/100%)\r')).toBe(0.125);
    expect(parseConvertProgress('    (100.00/100%)\r\n')).toBe(1);
    expect(parseConvertProgress('garbage')).toBeNull();
  });

  it('hands qemu-img\'s stderr to the user verbatim in qemu-img.failed', async () => {
    const err = await runQemuImg(['info', '-f', 'qcow2', '/nonexistent/virtkit-test.qcow2']).then(() => null, (e: unknown) => e);
    expect(isVirtkitError(err, 'qemu-img.failed')).toBe(true);
    expect((err as Error).message).toMatch(/^qemu-img: Could not open '\/nonexistent\/virtkit-test.qcow2'/);
    expect((err as { data: { exitCode: number } }).data.exitCode).toBe(1);
  });

  it('keeps file names from reading as options', () => {
    expect(fileArg('-rf.qcow2')).toBe('./-rf.qcow2');
    expect(fileArg('/abs/-x')).toBe('/abs/-x');
  });

  it('reports a missing binary as qemu.not-found', async () => {
    const err = await runQemuImg(['--version'], { binary: '/nonexistent/qemu-img' }).then(() => null, (e: unknown) => e);
    expect(isVirtkitError(err, 'qemu.not-found')).toBe(true);
  });
});

describe('qemu-img bounds', () => {
  let dir: string;
  let fifo: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'virtkit-qemu-img-'));
    fifo = join(dir, 'backing.fifo');
    execFileSync('mkfifo', [fifo]);
  });
  afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

  it('refuses a FIFO as a backing file up front (qemu-img would block opening it)', async () => {
    // A small bound: without the refusal this ends in operation.timeout, not argument.invalid.
    const run = { timeoutMs: 10_000 };
    for (const backing of [fifo, 'backing.fifo', `file:${fifo}`]) {
      const err = await createImage({ path: join(dir, 'overlay.qcow2'), format: 'qcow2', size: '1M', backing, backingFormat: 'raw' }, run)
        .then(() => null, (e: unknown) => e);
      expect(isVirtkitError(err, 'argument.invalid'), String(err)).toBe(true);
      expect((err as Error).message).toContain('is a FIFO');
      expect((err as { data: { field: string } }).data.field).toBe('backing');
    }
    expect(existsSync(join(dir, 'overlay.qcow2'))).toBe(false);
  });

  it('refuses a directory as a backing file, and still creates over a regular one', async () => {
    const err = await createImage({ path: join(dir, 'o.qcow2'), format: 'qcow2', size: '1M', backing: dir, backingFormat: 'raw' })
      .then(() => null, (e: unknown) => e);
    expect(isVirtkitError(err, 'argument.invalid')).toBe(true);
    await createImage({ path: join(dir, 'base.raw'), format: 'raw', size: '1M' });
    await createImage({ path: join(dir, 'top.qcow2'), format: 'qcow2', backing: 'base.raw', backingFormat: 'raw' });
    expect(existsSync(join(dir, 'top.qcow2'))).toBe(true);
  });

  it('kills a qemu-img that outlives its timeout: operation.timeout naming the command, no child left', async () => {
    // Opening a FIFO for reading blocks until a writer comes: this qemu-img never finishes by itself.
    const args = ['info', '-f', 'raw', fifo];
    const err = await runQemuImg(args, { timeoutMs: 300 }).then(() => null, (e: unknown) => e);
    expect(isVirtkitError(err, 'operation.timeout'), String(err)).toBe(true);
    expect((err as Error).message).toContain(`qemu-img info -f raw ${fifo}`);
    expect((err as { data: { args: string[]; timeoutMs: number } }).data).toMatchObject({ args, timeoutMs: 300 });
    // The promise settles only once qemu-img exited and was reaped.
    expect(await processesWithArg(fifo)).toEqual([]);
  });
});
