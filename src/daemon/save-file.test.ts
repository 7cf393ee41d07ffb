/**
 * The save file header: what a complete one reads back as, and a bounded fuzz of corrupted and
 * truncated headers: each is read or refused with save.invalid / save.truncated, never a crash.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateDefinition } from '../conf/index.js';
import { isVirtkitError } from '../util/errors.js';
import { completeHeader, parseSaveHeader, readSaveFile, writeProvisionalHeader } from './save-file.js';

let dir: string;
let valid: Buffer;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vk-save-'));
  await writeFile(join(dir, 'vmlinuz'), 'k');
  const definition = validateDefinition({ name: 'g', memory: '64MiB', boot: { loader: 'direct', kernel: join(dir, 'vmlinuz') } });
  const file = join(dir, 'g.save');
  const disks = [{ id: 'vda', path: join(dir, 'disk.qcow2') }];
  const offset = await writeProvisionalHeader(file, { definition, paused: false, savedAt: 'now' }, disks);
  const stream = Buffer.from('QEVM-stream-bytes');
  await writeFile(file, Buffer.concat([(await readFile(file)).subarray(0, offset), stream]));
  await completeHeader(file, offset, { complete: true, definition, paused: false, savedAt: 'now', streamBytes: stream.length,
    disks: [{ id: 'vda', path: disks[0]!.path, size: 123, mtimeNs: '1700000000000000000' }] });
  valid = await readFile(file);
});
afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

function parse(buf: Buffer): ReturnType<typeof parseSaveHeader> {
  return parseSaveHeader('f', buf.length, buf.subarray(0, 24), async (n) => buf.subarray(24, 24 + n));
}

describe('save file header', () => {
  it('reads back a completed header and where the stream starts', async () => {
    const { header, streamOffset } = await readSaveFile(join(dir, 'g.save'));
    expect(header.complete).toBe(true);
    expect(header.disks[0]!.mtimeNs).toBe('1700000000000000000');
    expect(valid.subarray(streamOffset).toString()).toBe('QEVM-stream-bytes');
  });

  it('an unfinished save (header never completed) is truncated', async () => {
    const file = join(dir, 'half.save');
    const definition = validateDefinition({ name: 'g', memory: '64MiB', boot: { loader: 'direct', kernel: join(dir, 'vmlinuz') } });
    await writeProvisionalHeader(file, { definition, paused: false, savedAt: 'now' }, []);
    await expect(readSaveFile(file)).rejects.toMatchObject({ code: 'save.truncated' });
  });

  it('fuzz: corrupted or truncated headers are read or refused with a typed error (bounded)', async () => {
    let seed = 12345;
    const rnd = (n: number): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
    const headerEnd = 24 + valid.readUInt32LE(20);
    let refused = 0;
    for (let i = 0; i < 3000; i++) {
      let buf = Buffer.from(valid);
      const mode = rnd(4);
      if (mode === 0) buf = buf.subarray(0, rnd(buf.length));
      else if (mode === 1) for (let k = 0; k < 1 + rnd(4); k++) buf[rnd(headerEnd)] = rnd(256);
      else if (mode === 2) buf[rnd(24)] = rnd(256);
      else {
        const at = 24 + rnd(headerEnd - 24);
        buf = Buffer.concat([buf.subarray(0, at), Buffer.from(['"', '}', '{', '[', '9', '-', 'null', '1e400'][rnd(8)]!), buf.subarray(at + 1)]);
      }
      try {
        await parse(buf);
      } catch (err) {
        if (!isVirtkitError(err) || !['save.invalid', 'save.truncated'].includes(err.code)) throw err;
        refused++;
      }
    }
    expect(refused).toBeGreaterThan(1000);
  });
});
