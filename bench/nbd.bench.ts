/**
 * NBD export read throughput: `virtkit nbd` vs `qemu-nbd` serving the same 1 GiB image to the
 * same client, `qemu-img convert` from the NBD URI into a null-co target (reads everything the
 * server reports as data, writes nothing), in the same run, for a raw and a qcow2 image (each
 * half data, half zeros). Also prints each server's CPU time per GiB, steadier than wall time
 * on a busy machine.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, ratioLine, timeMs } from './stats.js';

const GiB = 1024 * 1024 * 1024;
const ROUNDS = 5;
const CLI = resolve(dirname(fileURLToPath(import.meta.url)), '../../bin/virtkit.js');
const CLK_TCK = 100;

function execOk(cmd: string, args: string[]): Promise<void> {
  return new Promise((done, fail) => {
    execFile(cmd, args, (err, _out, stderr) => (err ? fail(new Error(`${cmd} failed: ${stderr}`)) : done()));
  });
}

/** Half pseudo-random data, half zeros, written for real (no holes), so both servers read it all. */
async function makeRaw(path: string): Promise<void> {
  const fh = await open(path, 'w');
  const block = Buffer.alloc(4 * 1024 * 1024);
  for (let i = 0; i < block.length; i += 4) block.writeUInt32LE((Math.imul(i, 2654435761) ^ (i >>> 7)) >>> 0, i);
  const zeros = Buffer.alloc(block.length);
  for (let off = 0; off < GiB; off += block.length) {
    // Alternate 64 MiB of data and 64 MiB of zeros.
    await fh.write(Math.floor(off / (64 << 20)) % 2 === 0 ? block : zeros, 0, block.length, off);
  }
  await fh.close();
}

/** Server CPU seconds (user + system) so far, from /proc. */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

interface Server { name: string; uri: string; proc: ChildProcess }

async function waitForSocket(path: string, proc: ChildProcess): Promise<void> {
  for (let i = 0; i < 200 && !existsSync(path); i++) {
    if (proc.exitCode !== null) throw new Error(`server exited with ${proc.exitCode}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  if (!existsSync(path)) throw new Error(`no socket at ${path}`);
}

async function startQemuNbd(image: string, format: string, sock: string): Promise<Server> {
  const proc = spawn('qemu-nbd', ['-r', '-f', format, '-k', sock, '--persistent', image], { stdio: 'ignore' });
  await waitForSocket(sock, proc);
  return { name: 'qemu-nbd', uri: `nbd+unix:///?socket=${sock}`, proc };
}

async function startVirtkit(image: string, format: string, sock: string): Promise<Server> {
  const proc = spawn(process.execPath, [CLI, 'nbd', image, '-f', format, '--socket', sock], { stdio: ['ignore', 'pipe', 'ignore'] });
  const uri = await new Promise<string>((done, fail) => {
    let out = '';
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) done(out.split('\n')[0]!);
    });
    proc.once('exit', (code) => fail(new Error(`virtkit nbd exited with ${code}`)));
  });
  return { name: 'virtkit', uri, proc };
}

async function stop(s: Server): Promise<void> {
  if (s.proc.exitCode !== null) return;
  const exited = new Promise((r) => s.proc.once('exit', r));
  s.proc.kill('SIGTERM');
  await exited;
}

/** One full read of the export by qemu-img; returns wall ms and the server's CPU seconds. */
async function readAll(s: Server): Promise<{ ms: number; cpu: number }> {
  const cpu0 = await cpuSeconds(s.proc.pid!);
  const ms = await timeMs(() => execOk('qemu-img', ['convert', '-f', 'raw', '-n', '--target-image-opts', s.uri,
    `driver=null-co,size=${GiB}`]));
  return { ms, cpu: (await cpuSeconds(s.proc.pid!)) - cpu0 };
}

export async function run(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'virtkit-bench-nbd-'));
  const servers: Server[] = [];
  try {
    const raw = join(dir, 'disk.raw');
    const qcow2 = join(dir, 'disk.qcow2');
    await makeRaw(raw);
    // Zero runs become unallocated clusters: the qcow2 is half data, half zero clusters.
    await execOk('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, qcow2]);
    for (const [format, image] of [['raw', raw], ['qcow2', qcow2]] as const) {
      const ref = await startQemuNbd(image, format, join(dir, `q-${format}.sock`));
      servers.push(ref);
      const ours = await startVirtkit(image, format, join(dir, `v-${format}.sock`));
      servers.push(ours);
      await readAll(ref); // warm the page cache and both servers
      await readAll(ours);
      const refRuns: { ms: number; cpu: number }[] = [];
      const ourRuns: { ms: number; cpu: number }[] = [];
      for (let i = 0; i < ROUNDS; i++) {
        refRuns.push(await readAll(ref));
        ourRuns.push(await readAll(ours));
      }
      const gibs = (runs: { ms: number }[]): number => 1000 / median(runs.map((r) => r.ms));
      console.log(ratioLine(`nbd read, 1 GiB ${format} (half zeros), qemu-img convert client`, gibs(ourRuns), gibs(refRuns),
        'GiB/s', 'qemu-nbd'));
      const cpu = (runs: { cpu: number }[]): number => median(runs.map((r) => r.cpu));
      console.log(`  server CPU per GiB: virtkit ${cpu(ourRuns).toFixed(2)} s, qemu-nbd ${cpu(refRuns).toFixed(2)} s`);
      await stop(ref);
      await stop(ours);
    }
  } finally {
    for (const s of servers) await stop(s);
    await rm(dir, { recursive: true, force: true });
  }
}
