/**
 * Damaged ext images through the CLI: one regression image per fault of the damaged-image
 * rules (docs/guestfs.md, "Damaged images"), each a fresh `mke2fs -d` image corrupted at the
 * named field (by `debugfs -w` or a byte patch), with the listing, the warnings and the exit
 * status it must give. Also: names that are not plain text, and a reader that goes away.
 */
import { spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeDir, run, tempDir } from './guestfs-fixtures.js';

const CLI = join(resolve(import.meta.dirname, '../..'), 'bin', 'virtkit.js');

interface Result { code: number; stdout: Buffer; stderr: string }

/** Runs the CLI; `stopAfter` closes its stdout after that many bytes (a reader going away). */
function virtkit(args: readonly string[], stopAfter?: number): Promise<Result> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let got = 0;
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      out.push(c);
      got += c.length;
      if (stopAfter !== undefined && got >= stopAfter) child.stdout.destroy();
    });
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString('utf8'); });
    child.on('close', (code, signal) => done({ code: code ?? (signal === 'SIGPIPE' ? 141 : -1), stdout: Buffer.concat(out), stderr }));
  });
}

const text = (r: Result): string => r.stdout.toString('utf8');

let work: string;
let tree: string;

async function image(name: string, mke2fsArgs: readonly string[] = [], size = '8M', from = tree): Promise<string> {
  const path = join(work, `${name}.img`);
  await run('mke2fs', ['-q', '-F', '-t', 'ext4', '-b', '1024', '-E', 'root_owner=0:0', ...mke2fsArgs, '-d', from, path, size]);
  return path;
}

async function debugfsWrite(img: string, request: string): Promise<void> {
  await run('debugfs', ['-w', '-R', request, img]);
}

async function debugfsOut(img: string, request: string): Promise<string> {
  return (await run('debugfs', ['-R', request, img])).stdout;
}

/** Patches `bytes` at byte `offset` of `img`. */
async function patch(img: string, offset: number, bytes: Uint8Array): Promise<void> {
  const data = await readFile(img);
  data.set(bytes, offset);
  await writeFile(img, data);
}

/** Byte offset on the image of the directory record named `name` in the first block of directory `dir`. */
async function recordOffset(img: string, dir: string, name: string): Promise<number> {
  const block = Number((await debugfsOut(img, `blocks ${dir}`)).trim().split(/\s+/)[0]);
  const data = await readFile(img);
  const base = block * 1024;
  for (let off = 0; off < 1024;) {
    const recLen = data.readUInt16LE(base + off + 4);
    const nameLen = data[base + off + 6]!;
    if (data.subarray(base + off + 8, base + off + 8 + nameLen).toString('latin1') === name) return base + off;
    if (recLen < 8) break;
    off += recLen;
  }
  throw new Error(`no record ${name} in ${dir}`);
}

beforeAll(async () => {
  work = await tempDir('guestfs-damaged');
  tree = join(work, 'tree');
  for (const d of ['a', 'b', 'c', 'd', 'e', 'f']) {
    await mkdir(join(tree, d), { recursive: true });
    await writeFile(join(tree, d, 'f'), `${d}\n`);
  }
  await writeFile(join(tree, 'motd'), 'hello\n');
  await writeFile(join(tree, 'aXb'), 'slash\n');
});

afterAll(async () => {
  await removeDir(work);
});

describe('damaged images', () => {
  it('1: an inode table pointer of 0 is an error for the inodes of its group, never a zero-filled file', async () => {
    // 8 inodes per group: the root's entries with inodes 17-24 live in group 2.
    const img = await image('inode-table-zero', ['-g', '1024', '-N', '64']);
    const inodes = [...(await debugfsOut(img, 'ls /')).matchAll(/(\d+)\s+\(\d+\)\s+(\S+)/g)]
      .map((m) => ({ ino: Number(m[1]), name: m[2]! })).filter((e) => e.name !== '.' && e.name !== '..').sort((x, y) => (x.name < y.name ? -1 : 1));
    const inGroup2 = (ino: number): boolean => ino >= 17 && ino <= 24;
    expect(inodes.filter((e) => inGroup2(e.ino)).length).toBeGreaterThan(1);
    await debugfsWrite(img, 'set_bg 2 inode_table 0');
    const ls = await virtkit(['fs', 'ls', '-l', img, '/']);
    expect(text(ls).split('\n').map((l) => l.split(' ').pop())).toEqual([...inodes.filter((e) => !inGroup2(e.ino)).map((e) => e.name), '']);
    expect(text(ls)).not.toContain('?---------');
    for (const { name } of inodes.filter((e) => inGroup2(e.ino))) {
      // the same path form as -R reports it
      expect(ls.stderr).toContain(`virtkit: /${name}: fs.corrupt: ext group descriptor at offset`);
    }
    const recursive = await virtkit(['fs', 'ls', '-R', img, '/']);
    for (const { name } of inodes.filter((e) => inGroup2(e.ino))) expect(recursive.stderr).toContain(`virtkit: /${name}: fs.corrupt:`);
    expect(ls.stderr).toContain('bg_inode_table 0 of group 2 is outside the filesystem');
    expect(ls.code).toBe(13);
    const stat = await virtkit(['fs', 'stat', img, `/${inodes.find((e) => inGroup2(e.ino))!.name}`]);
    expect(text(stat)).toBe('');
    expect(stat.stderr).toContain('fs.corrupt');
    expect(stat.code).toBe(8);
  });

  it('2: a walk goes past a damaged directory record, and a path next to it still resolves; --strict stops', async () => {
    const img = await image('bad-rec-len');
    await patch(img, (await recordOffset(img, '/', 'c')) + 4, Uint8Array.of(3, 0));
    const ls = await virtkit(['fs', 'ls', '-R', img, '/']);
    // c's record is lost; every other name, before and after it, is listed.
    expect(text(ls)).toBe(['a', 'a/f', 'aXb', 'b', 'b/f', 'd', 'd/f', 'e', 'e/f', 'f', 'f/f', 'lost+found', 'motd', ''].join('\n'));
    expect(ls.stderr).toMatch(/^virtkit: \/: fs\.corrupt: ext directory entry at offset \d+: rec_len 3 is invalid$/m);
    expect(ls.code).toBe(13);
    const cat = await virtkit(['fs', 'cat', img, '/motd']);
    expect(text(cat)).toBe('hello\n');
    expect(cat.code).toBe(0);
    // A name that is not found where part of the directory is unreadable: the damage, not "no such file".
    const missing = await virtkit(['fs', 'cat', img, '/c/f']);
    expect(missing.stderr).toContain('fs.corrupt');
    expect(missing.code).toBe(8);
    const strict = await virtkit(['fs', 'ls', '-R', '--strict', img, '/']);
    expect(text(strict)).toBe('');
    // The patched block's checksum no longer matches either: under --strict that is the first error.
    expect(strict.stderr).toMatch(/virtkit: error: fs\.corrupt: ext directory (block|entry) at offset/);
    expect(strict.code).toBe(8);
  });

  it('3: a metadata checksum mismatch is a warning over consistent data, an error under --strict', async () => {
    const img = await image('inode-checksum');
    await debugfsWrite(img, 'set_inode_field /motd checksum 0x1234');
    const cat = await virtkit(['fs', 'cat', img, '/motd']);
    expect(text(cat)).toBe('hello\n');
    expect(cat.stderr).toMatch(/^virtkit: warning: ext inode at offset \d+: inode \d+ checksum mismatch \(read through; --strict refuses it\)$/m);
    expect(cat.code).toBe(0);
    const strict = await virtkit(['fs', 'cat', '--strict', img, '/motd']);
    expect(text(strict)).toBe('');
    expect(strict.stderr).toContain('fs.corrupt: ext inode at offset');
    expect(strict.code).toBe(8);

    const dirImg = await image('dir-checksum');
    const tail = Number((await debugfsOut(dirImg, 'blocks /')).trim().split(/\s+/)[0]) * 1024 + 1024 - 4;
    await patch(dirImg, tail, Uint8Array.of(1, 2, 3, 4));
    const ls = await virtkit(['fs', 'ls', dirImg, '/']);
    expect(text(ls)).toBe('a\naXb\nb\nc\nd\ne\nf\nlost+found\nmotd\n');
    expect(ls.stderr).toMatch(/^virtkit: warning: ext directory block at offset \d+: directory 2 block 0 checksum mismatch/m);
    expect(ls.code).toBe(0);
    expect((await virtkit(['fs', 'ls', '--strict', dirImg, '/'])).code).toBe(8);
  });

  it('4: bigalloc is fs.unsupported; sizes are exact; s_first_meta_bg beyond the descriptors is refused', async () => {
    const big = await image('bigalloc', ['-O', 'bigalloc', '-C', '16384'], '16M');
    const ls = await virtkit(['fs', 'ls', big, '/']);
    expect(ls.stderr).toContain('fs.unsupported: ext4 bigalloc (cluster allocation) is not supported');
    expect(ls.code).toBe(9);

    const huge = await image('huge-size');
    await debugfsWrite(huge, 'set_inode_field /motd size 18446462598732849291');
    const stat = await virtkit(['fs', 'stat', huge, '/motd']);
    expect(stat.stderr).toContain('size 18446462598732849291 exceeds');
    expect(stat.code).toBe(8);

    const meta = await image('first-meta-bg', ['-O', 'meta_bg,^resize_inode']);
    await debugfsWrite(meta, 'ssv first_meta_bg 1000');
    const opened = await virtkit(['fs', 'ls', meta, '/']);
    expect(opened.stderr).toMatch(/fs\.corrupt: ext superblock at offset 1284: s_first_meta_bg 1000 is beyond the \d+ group descriptor blocks/);
    expect(opened.code).toBe(8);
  });

  it('5: a name holding "/" is listed escaped and reached by inode number', async () => {
    const img = await image('slash-name');
    const ino = Number(/(\d+)\s+\(\d+\)\s+aXb/.exec(await debugfsOut(img, 'ls /'))![1]);
    await patch(img, (await recordOffset(img, '/', 'aXb')) + 9, Buffer.from('/'));
    const ls = await virtkit(['fs', 'ls', img, '/']);
    expect(text(ls)).toContain("$'a\\x2fb'\n");
    const long = await virtkit(['fs', 'ls', '-l', img, '/']);
    expect(text(long)).toMatch(/^-rw-r--r-- +1 +0 +0 +6 \S+ \S+ \$'a\\x2fb'$/m);
    expect(long.code).toBe(0);
    expect(text(await virtkit(['fs', 'cat', img, `#${ino}`]))).toBe('slash\n');
    expect(text(await virtkit(['fs', 'stat', img, `#${ino}`]))).toContain(`Inode: ${ino}`);
    // an inode number that cannot be is a bad argument, not a corrupt image
    for (const ref of ['#99999', '#0', '#abc']) {
      const res = await virtkit(['fs', 'cat', img, ref]);
      expect(res.code, ref).toBe(5);
      expect(String(res.stderr), ref).toMatch(/argument\.invalid: #\w*: #N takes an inode number 1\.\.\d+/);
    }
  });

  it('6: names with control characters or invalid UTF-8 are quoted on a terminal, exact with -0 and --json', async () => {
    const hostile = join(work, 'hostile');
    await mkdir(hostile);
    await writeFile(join(hostile, 'evil\x1b]0;owned\x07\nname'), 'x');
    await writeFile(Buffer.from([...Buffer.from(join(hostile, 'caf')), 0xff]), 'y');
    const img = await image('hostile-names', [], '4M', hostile);
    const ls = await virtkit(['fs', 'ls', img, '/']);
    expect(text(ls)).toBe("$'caf\\xff'\n$'evil\\e]0;owned\\x07\\nname'\nlost+found\n");
    const find = await virtkit(['fs', 'find', img, '/', '-type', 'f']);
    expect(text(find)).toBe("$'/caf\\xff'\n$'/evil\\e]0;owned\\x07\\nname'\n");
    const raw = await virtkit(['fs', 'ls', '-0', img, '/']);
    expect(raw.stdout).toEqual(Buffer.concat([Buffer.from([0x63, 0x61, 0x66, 0xff, 0]), Buffer.from('evil\x1b]0;owned\x07\nname\0lost+found\0')]));
    const found = await virtkit(['fs', 'find', img, '/', '-name', 'caf*', '-print0']);
    expect(found.stdout).toEqual(Buffer.from([0x2f, 0x63, 0x61, 0x66, 0xff, 0]));
    const json = JSON.parse(text(await virtkit(['fs', 'ls', '--json', img, '/']))) as { name: string; nameHex?: string }[];
    expect(json[0]!.nameHex).toBe('636166ff');
    expect(json[1]!.name).toBe('evil\x1b]0;owned\x07\nname');
  });

  it('11: a reader that goes away ends the command quietly with the status of a closed pipe', async () => {
    const big = join(work, 'big');
    await mkdir(big);
    await writeFile(join(big, 'file'), Buffer.alloc(8 << 20, 0x61));
    const img = await image('big-file', [], '16M', big);
    const cat = await virtkit(['fs', 'cat', img, '/file'], 1);
    expect(cat.stderr).toBe('');
    expect(cat.code).toBe(141);
    const help = await virtkit(['bootinfo', '--help'], 1);
    expect(help.stderr).toBe('');
    expect([0, 141]).toContain(help.code);
  });
});
