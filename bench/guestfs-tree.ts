/**
 * The tree-walk part of the guestfs bench (target 5 of the performance issue): an ext4 image
 * of 130,000 entries in 65,000 directories, built once with `mke2fs -d` and kept between runs
 * under the system's temp dir, walked whole-process by `virtkit fs ls -R` and `virtkit fs find`
 * against `debugfs -R 'rdump / DIR'` and `find` on a read-only loop mount (when the mount is
 * possible) in the same run; each output is checked against `find` on the source directory.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { median } from './stats.js';

/** 250 top directories of 259 subdirectories each: 65,000 directories, each holding one file. */
const TOP = 250;
const SUB = 259;
const ENTRIES = TOP * (SUB + 1) * 2;
const RUNS = 3;
/** debugfs rdump writes the whole tree out (tens of seconds on a loaded disk): one run. */
const REFERENCE_RUNS = 1;
const TARGET_MS = 2000;
const TARGET_MB = 100;
/** Bump when the tree's recipe changes: the cached image is rebuilt. */
const CACHE = join(tmpdir(), 'virtkit-bench-guestfs-tree-v1');

interface Figures {
  readonly ms: number;
  /** CPU time of the process (user + system), s: what load on a shared machine moves least. */
  readonly cpu: number;
  /** Peak RSS of the whole process (`/usr/bin/time` %M, which is getrusage's ru_maxrss), MB. */
  readonly mb: number;
}

/** The image and the sorted listing `find` gave of its source directory, built once. */
async function treeImage(): Promise<{ image: string; listing: string[] }> {
  const image = join(CACHE, 'tree.img');
  const listingFile = join(CACHE, 'find-source.txt');
  if (existsSync(image) && existsSync(listingFile)) {
    return { image, listing: (await readFile(listingFile, 'utf8')).split('\n').filter((l) => l !== '') };
  }
  await rm(CACHE, { recursive: true, force: true });
  await mkdir(CACHE, { recursive: true });
  const src = join(CACHE, 'src');
  await mkdir(src);
  for (let a = 0; a < TOP; a++) {
    const top = join(src, `d${String(a).padStart(3, '0')}`);
    await mkdir(top);
    await writeFile(join(top, `x${a}`), '');
    for (let b = 0; b < SUB; b++) {
      const sub = join(top, `s${String(b).padStart(3, '0')}`);
      await mkdir(sub);
      await writeFile(join(sub, `x${a}_${b}`), '');
    }
  }
  const found = spawnSync('find', [src, '-mindepth', '1', '-printf', '%P\\n'], { encoding: 'utf8', maxBuffer: 1 << 28 });
  if (found.status !== 0) throw new Error(`find ${src} failed: ${found.stderr}`);
  // mke2fs adds lost+found to the source's entries.
  const listing = [...found.stdout.split('\n').filter((l) => l !== ''), 'lost+found'].sort();
  const made = spawnSync('mke2fs', ['-q', '-F', '-t', 'ext4', '-N', String(ENTRIES + 10_000), '-d', src, `${image}.part`, '600M'], { encoding: 'utf8' });
  if (made.status !== 0) throw new Error(`mke2fs failed: ${made.stderr}`);
  await rm(src, { recursive: true, force: true });
  await writeFile(listingFile, `${listing.join('\n')}\n`);
  await rename(`${image}.part`, image);
  return { image, listing };
}

/** Runs `argv` under /usr/bin/time: its wall time, peak RSS and stdout. */
function measure(argv: readonly string[], work: string): Figures & { stdout: string } {
  if (!existsSync('/usr/bin/time')) throw new Error('the tree walk bench reads peak RSS and CPU from /usr/bin/time: install the time package (scripts/setup does)');
  const timeFile = join(work, 'time.txt');
  const t0 = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-o', timeFile, '-f', '%M %U %S', ...argv], { encoding: 'utf8', maxBuffer: 1 << 28 });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed (${r.status}): ${r.stderr.slice(0, 2000)}`);
  const [kb, user, sys] = spawnSync('tail', ['-1', timeFile], { encoding: 'utf8' }).stdout.trim().split(' ').map(Number);
  return { ms, mb: kb! / 1024, cpu: user! + sys!, stdout: r.stdout };
}

function medianFigures(runs: readonly Figures[]): Figures {
  return { ms: median(runs.map((r) => r.ms)), mb: median(runs.map((r) => r.mb)), cpu: median(runs.map((r) => r.cpu)) };
}

function show(label: string, f: Figures): string {
  return `${label}: ${(f.ms / 1000).toFixed(2)} s (CPU ${f.cpu.toFixed(2)} s), peak RSS ${f.mb.toFixed(1)} MB`;
}

/** Whether two listings hold the same lines (order aside); the first difference otherwise. */
function sameLines(ours: string[], reference: readonly string[]): string {
  const a = [...ours].sort();
  if (a.length !== reference.length) return `${a.length} lines, reference ${reference.length}`;
  const i = a.findIndex((line, k) => line !== reference[k]);
  return i < 0 ? 'identical' : `line ${i} differs: ${JSON.stringify(a[i])} vs ${JSON.stringify(reference[i])}`;
}

function targetLine(what: string, f: Figures): string {
  const reached = f.ms < TARGET_MS && f.mb < TARGET_MB;
  return `target 5 ${what} under 2 s and 100 MB: ${reached ? 'reached' : `NOT REACHED (${(f.ms / 1000).toFixed(2)} s, ${f.mb.toFixed(1)} MB)`}`;
}

/** `find` on a read-only loop mount of the image, or undefined when it cannot be mounted here. */
function loopFind(image: string, work: string, args: readonly string[]): Figures[] | undefined {
  const mnt = join(work, 'mnt');
  spawnSync('mkdir', ['-p', mnt]);
  if (spawnSync('mount', ['-o', 'loop,ro', image, mnt], { stdio: 'ignore' }).status !== 0) return undefined;
  try {
    measure(['find', mnt, ...args], work);
    return Array.from({ length: RUNS }, () => measure(['find', mnt, ...args], work));
  } finally {
    spawnSync('umount', [mnt], { stdio: 'ignore' });
  }
}

export async function runTreeWalks(cli: string): Promise<void> {
  if (!existsSync('/usr/bin/time')) {
    console.log('tree walks: /usr/bin/time is not installed (it measures peak RSS): skipped');
    return;
  }
  const { image, listing } = await treeImage();
  const work = await mkdtemp(join(tmpdir(), 'virtkit-bench-tree-'));
  try {
    const node = process.execPath;
    // One untimed pass of each puts the image in the page cache: every figure below is warm.
    measure([node, cli, 'fs', 'ls', '-R', image, '/'], work);
    const lsRuns = Array.from({ length: RUNS }, () => measure([node, cli, 'fs', 'ls', '-R', image, '/'], work));
    const findRuns = Array.from({ length: RUNS }, () => measure([node, cli, 'fs', 'find', image, '/', '-name', 'x*'], work));
    const rdumpRuns = Array.from({ length: REFERENCE_RUNS }, (_, i) => {
      const dir = join(work, `rdump${i}`);
      spawnSync('mkdir', [dir]);
      const f = measure(['debugfs', '-R', `rdump / ${dir}`, image], work);
      spawnSync('rm', ['-rf', dir]);
      return f;
    });
    const loopLs = loopFind(image, work, []);
    const loopName = loopFind(image, work, ['-name', 'x*']);

    const ls = medianFigures(lsRuns);
    const find = medianFigures(findRuns);
    const rdump = medianFigures(rdumpRuns);
    const load = spawnSync('cat', ['/proc/loadavg'], { encoding: 'utf8' }).stdout.split(' ')[0];
    console.log(`tree: ext4, ${listing.length} entries in ${TOP * (SUB + 1)} directories (mke2fs -d), image cached in ${CACHE}; warm page cache; peak RSS and CPU from /usr/bin/time (ru_maxrss, user + sys); load average ${load}`);
    console.log(`${show('virtkit fs ls -R IMG /', ls)}; debugfs rdump ${(rdump.ms / 1000).toFixed(2)} s, ratio ${(ls.ms / rdump.ms).toFixed(3)}`
      + (loopLs === undefined ? '; find on a loop mount: not measured (mount -o loop,ro failed)' : `; find on a loop mount ${(medianFigures(loopLs).ms / 1000).toFixed(2)} s, ratio ${(ls.ms / medianFigures(loopLs).ms).toFixed(3)}`));
    console.log(`${show("virtkit fs find IMG / -name 'x*'", find)}; debugfs rdump ${(rdump.ms / 1000).toFixed(2)} s, ratio ${(find.ms / rdump.ms).toFixed(3)}`
      + (loopName === undefined ? '; find on a loop mount: not measured' : `; find -name on a loop mount ${(medianFigures(loopName).ms / 1000).toFixed(2)} s, ratio ${(find.ms / medianFigures(loopName).ms).toFixed(3)}`));
    console.log(show('debugfs -R "rdump / DIR" (reference, writes the files too)', rdump));
    const lsLines = lsRuns[0]!.stdout.split('\n').filter((l) => l !== '');
    const findLines = findRuns[0]!.stdout.split('\n').filter((l) => l !== '');
    const expectedFind = listing.filter((p) => /(^|\/)x[^/]*$/.test(p)).map((p) => `/${p}`).sort();
    console.log(`correctness: fs ls -R vs find on the source directory (+ lost+found): ${sameLines(lsLines, listing)}; fs find -name 'x*' vs find -name 'x*': ${sameLines(findLines, expectedFind)}`);
    console.log(targetLine('fs ls -R of the 130,000-entry tree', ls));
    console.log(targetLine("fs find -name 'x*' on the 130,000-entry tree", find));
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
