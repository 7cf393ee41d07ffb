/**
 * Tree walks read an ext4 image in few, large requests (docs/guestfs.md, "Tree walks"): a
 * walk of about 2,000 directories made by mke2fs -d (one of them an htree directory of 3,000
 * names after e2fsck -D) lists exactly what `find` lists in the source directory, and does so
 * in a small fraction of one read per directory, counted at the block device. The CLI's
 * `fs ls -R` and `fs find` print the same tree.
 */
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { openFilesystem } from '../../src/guestfs/fs/index.js';
import { walkTree } from '../../src/guestfs/walk.js';
import type { BlockDevice } from '../../src/storage/block/index.js';
import { RawImage } from '../../src/storage/image/index.js';
import { buildExtImage, removeDir, run, tempDir } from './guestfs-fixtures.js';

const exec = promisify(execFile);
const CLI = resolve(import.meta.dirname, '../../bin/virtkit.js');
const TOP = 40;
const SUB = 50;
const BIG = 3000;

/** A device that counts the requests made to it. */
function counting(dev: BlockDevice): BlockDevice & { requests: number } {
  const counted = {
    requests: 0,
    size: dev.size,
    format: dev.format,
    read: (offset: number, length: number) => { counted.requests++; return dev.read(offset, length); },
    readInto: (offset: number, target: Uint8Array) => { counted.requests++; return dev.readInto!(offset, target); },
    blockStatus: (offset: number, length: number) => dev.blockStatus(offset, length),
    close: () => dev.close(),
  };
  return counted;
}

let work: string;
let image: string;
let expected: string[];
let directories: number;

beforeAll(async () => {
  work = await tempDir('virtkit-walk-');
  const src = join(work, 'src');
  await mkdir(join(src, 'big'), { recursive: true });
  for (let a = 0; a < TOP; a++) {
    for (let b = 0; b < SUB; b++) {
      await mkdir(join(src, `d${a}`, `s${b}`), { recursive: true });
      await writeFile(join(src, `d${a}`, `s${b}`, `x${a}_${b}`), '');
    }
  }
  for (let i = 0; i < BIG; i++) await writeFile(join(src, 'big', `file-with-a-longer-name-${i}`), '');
  image = join(work, 'walk.img');
  await buildExtImage(image, src, { name: 'walk', type: 'ext4', blockSize: 4096 }, 256);
  const found = await run('find', [src, '-mindepth', '1', '-printf', '/%P\\n'], { maxBuffer: 1 << 26 });
  expected = [...found.stdout.split('\n').filter((l) => l !== ''), '/lost+found'].sort();
  directories = 1 + TOP * (SUB + 1) + 1;
}, 120_000);

afterAll(async () => {
  await removeDir(work);
});

describe('tree walks', () => {
  test('list what find lists, an htree directory included, in few requests to the image', async () => {
    const dev = counting(await RawImage.open(image));
    const fs = await openFilesystem(dev);
    const requestsToOpen = dev.requests;
    const paths: string[] = [];
    for await (const item of walkTree(fs, '/')) paths.push(item.path);
    await fs.close();
    expect([...paths].sort()).toEqual(expected);
    expect(paths.filter((p) => p.startsWith('/big/'))).toHaveLength(BIG);
    // One request per directory and per inode-table block is what a walk without batching made.
    const requests = dev.requests - requestsToOpen;
    expect(requests).toBeLessThan(directories / 10);
  });

  test('a strict walk reads the same tree', async () => {
    const fs = await openFilesystem(await RawImage.open(image), { strict: true });
    let n = 0;
    for await (const _ of walkTree(fs, '/', { strict: true })) n++;
    await fs.close();
    expect(n).toBe(expected.length);
  });

  test('fs ls -R and fs find print the tree, streamed in order', async () => {
    const ls = await exec(process.execPath, [CLI, 'fs', 'ls', '-R', image, '/'], { maxBuffer: 1 << 26 });
    const lines = ls.stdout.split('\n').filter((l) => l !== '');
    expect(lines.map((l) => `/${l}`).sort()).toEqual(expected);
    expect(lines.slice(0, 3)).toEqual(['big', 'big/file-with-a-longer-name-0', 'big/file-with-a-longer-name-1']);
    const find = await exec(process.execPath, [CLI, 'fs', 'find', image, '/', '-name', 'x1_*'], { maxBuffer: 1 << 26 });
    expect(find.stdout.split('\n').filter((l) => l !== '').sort()).toEqual(expected.filter((p) => /\/x1_[^/]*$/.test(p)));
  });
});
