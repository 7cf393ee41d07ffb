/**
 * `virtkit nbd` against qemu's own NBD clients: qemu-img convert / compare / map and qemu-io,
 * over unix sockets and loopback TCP, read-only, --snapshot, raw and qcow2 sources.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const CLI = resolve(import.meta.dirname, '../../bin/virtkit.js');
const SIZE = 4 * 1024 * 1024;

interface Run { code: number; stdout: string; stderr: string }

function run(cmd: string, args: string[]): Promise<Run> {
  return new Promise((done) => {
    execFile(cmd, args, { maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      done({ code, stdout, stderr });
    });
  });
}

async function mustRun(cmd: string, args: string[]): Promise<string> {
  const r = await run(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

interface Served { uri: string; proc: ChildProcess; stderr: () => string; stop: () => Promise<number | null> }
const running = new Set<ChildProcess>();

/** Starts `virtkit nbd ARGS` and waits for the URI it prints when ready. */
async function serve(args: string[]): Promise<Served> {
  const proc = spawn(process.execPath, [CLI, 'nbd', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(proc);
  let out = '';
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((res) => proc.once('exit', (code) => {
    running.delete(proc);
    res(code);
  }));
  const uri = await new Promise<string>((res, rej) => {
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) res(out.split('\n')[0]!);
    });
    void exited.then((code) => rej(new Error(`virtkit nbd exited ${code}: ${err}`)));
  });
  return {
    uri, proc, stderr: () => err,
    stop: async () => {
      proc.kill('SIGTERM');
      return exited;
    },
  };
}

function sha(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

let dir: string;
let rawPath: string;
let rawHash: string;

beforeAll(async () => {
  if (!existsSync(resolve(import.meta.dirname, '../../dist/src/cli/main.js'))) {
    throw new Error('dist/ is missing: run `npm run build` first');
  }
  dir = await mkdtemp(join(tmpdir(), 'virtkit-nbd-it-'));
  rawPath = join(dir, 'disk.raw');
  const image = Buffer.alloc(SIZE);
  image.fill(0xab, 0, 64 * 1024);
  for (let i = 64 * 1024; i < SIZE; i++) image[i] = (i * 2654435761) >>> 24;
  image.fill(0, 1024 * 1024, 2 * 1024 * 1024);
  await writeFile(rawPath, image);
  rawHash = sha(image);
});

afterAll(async () => {
  for (const p of running) p.kill('SIGKILL');
  await rm(dir, { recursive: true, force: true });
});

describe('virtkit nbd, read-only raw export', () => {
  let unix: Served;
  let tcp: Served;
  beforeAll(async () => {
    unix = await serve([rawPath, '-f', 'raw', '--socket', join(dir, 'ro.sock'), '--shared', '2']);
    tcp = await serve([rawPath, '-f', 'raw', '--port', '0', '--read-only']);
  });
  afterAll(async () => {
    expect(await unix.stop()).toBe(0);
    expect(await tcp.stop()).toBe(0);
    expect(existsSync(join(dir, 'ro.sock'))).toBe(false);
  });

  it('prints URIs qemu understands', () => {
    expect(unix.uri).toBe(`nbd+unix:///?socket=${join(dir, 'ro.sock')}`);
    expect(tcp.uri).toMatch(/^nbd:\/\/127\.0\.0\.1:\d+\/$/);
  });

  it('qemu-img convert over nbd+unix reproduces the image, and qemu-img compare agrees', async () => {
    const out = join(dir, 'copy.raw');
    await mustRun('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', unix.uri, out]);
    expect(sha(await readFile(out))).toBe(rawHash);
    const cmp = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', rawPath, unix.uri]);
    expect(cmp.stdout).toContain('Images are identical');
    expect(cmp.code).toBe(0);
  });

  it('qemu-io reads the pattern over nbd://127.0.0.1', async () => {
    const out = await mustRun('qemu-io', ['-f', 'raw', '-r', '-c', 'read -P 0xab 0 64k', '-c', 'read -P 0 1M 1M', tcp.uri]);
    expect(out).toContain('read 65536/65536 bytes at offset 0');
    expect(out).toContain('read 1048576/1048576 bytes at offset 1048576');
    const wrong = await run('qemu-io', ['-f', 'raw', '-r', '-c', 'read -P 0xac 0 64k', tcp.uri]);
    expect(wrong.stdout + wrong.stderr).toMatch(/Pattern verification failed/);
  });

  it('refuses writes', async () => {
    const r = await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0xcd 0 64k', tcp.uri]);
    expect(r.stdout).not.toContain('wrote 65536/65536');
    expect(r.stderr).toMatch(/read-only|Permission denied/i);
    expect(sha(await readFile(rawPath))).toBe(rawHash);
  });
});

describe('virtkit nbd --snapshot', () => {
  it('keeps writes in a throwaway overlay: read back over the connection, image unchanged', async () => {
    const s = await serve([rawPath, '-f', 'raw', '--socket', join(dir, 'snap.sock'), '--snapshot', '--export-name', 'disk']);
    try {
      expect(s.uri).toBe(`nbd+unix:///disk?socket=${join(dir, 'snap.sock')}`);
      const out = await mustRun('qemu-io', ['-f', 'raw',
        '-c', 'write -P 0xcd 0 64k', '-c', 'read -P 0xcd 0 64k',
        '-c', 'write -z 1M 1M', '-c', 'write -P 0x11 2M 4k', '-c', 'flush', '-c', 'read -P 0x11 2M 4k', s.uri]);
      expect(out).toContain('wrote 65536/65536 bytes at offset 0');
      expect(out).toContain('read 65536/65536 bytes at offset 0');
      expect(out).toContain('read 4096/4096 bytes at offset 2097152');
      // Block status over NBD: the zeroed megabyte is a zero extent, the rest data.
      const map = JSON.parse(await mustRun('qemu-img', ['map', '--output=json', '-f', 'raw', s.uri])) as
        { start: number; length: number; zero: boolean; data: boolean }[];
      expect(map.filter((e) => e.zero).map((e) => [e.start, e.length])).toEqual([[1024 * 1024, 1024 * 1024]]);
      expect(map.reduce((n, e) => n + e.length, 0)).toBe(SIZE);
      // A second connection sees the same overlay.
      await mustRun('qemu-io', ['-f', 'raw', '-r', '-c', 'read -P 0xcd 0 64k', s.uri]);
    } finally {
      expect(await s.stop()).toBe(0);
    }
    expect(sha(await readFile(rawPath))).toBe(rawHash);
  });
});

describe('virtkit nbd with a qcow2 source', () => {
  it('serves guest data and zero clusters through block status', async () => {
    const qcow = join(dir, 'disk.qcow2');
    await mustRun('qemu-img', ['create', '-q', '-f', 'qcow2', qcow, '8M']);
    await mustRun('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x42 0 1M', '-c', 'write -z 1M 1M', '-c', 'write -P 0x43 3M 512k', qcow]);
    const before = sha(await readFile(qcow));
    const s = await serve([qcow, '-f', 'qcow2', '--socket', join(dir, 'qcow.sock')]);
    try {
      const cmp = await run('qemu-img', ['compare', '-f', 'qcow2', '-F', 'raw', qcow, s.uri]);
      expect(cmp.stdout).toContain('Images are identical');
      await mustRun('qemu-io', ['-f', 'raw', '-r', '-c', 'read -P 0x42 0 1M', '-c', 'read -P 0x43 3M 512k', s.uri]);
      const map = JSON.parse(await mustRun('qemu-img', ['map', '--output=json', '-f', 'raw', s.uri])) as
        { start: number; length: number; zero: boolean; data: boolean }[];
      const dataExtents = map.filter((e) => e.data && !e.zero).map((e) => [e.start, e.length]);
      expect(dataExtents).toEqual([[0, 1024 * 1024], [3 * 1024 * 1024, 512 * 1024]]);
      expect(map.reduce((n, e) => n + e.length, 0)).toBe(8 * 1024 * 1024);
    } finally {
      expect(await s.stop()).toBe(0);
    }
    expect(sha(await readFile(qcow))).toBe(before);
  });
});

describe('virtkit nbd arguments', () => {
  it('needs a format from -f or the name, and refuses contradictory flags', async () => {
    const unnamed = join(dir, 'disk-without-extension');
    await copyFile(rawPath, unnamed);
    const noFormat = await run(process.execPath, [CLI, 'nbd', unnamed, '--socket', join(dir, 'x.sock')]);
    expect(noFormat.code).toBe(5);
    expect(noFormat.stderr).toMatch(/argument\.invalid: cannot tell the format .*pass -f raw\|qcow2/);
    const both = await run(process.execPath, [CLI, 'nbd', rawPath, '-f', 'raw', '--read-only', '--snapshot', '--socket', join(dir, 'x.sock')]);
    expect(both.code).toBe(5);
    expect(both.stderr).toContain('argument.invalid');
    const badFormat = await run(process.execPath, [CLI, 'nbd', rawPath, '-f', 'vmdk9', '--socket', join(dir, 'x.sock')]);
    expect(badFormat.stderr).toContain('argument.invalid: -f must be one of raw, qcow2, vmdk, vdi');
  });

  it('warns that NBD has no access control when bound beyond loopback', async () => {
    const s = await serve([rawPath, '-f', 'raw', '--bind', '0.0.0.0', '--port', '0']);
    try {
      expect(s.stderr()).toMatch(/warning: NBD has no access control/);
      expect(s.uri).toMatch(/^nbd:\/\/0\.0\.0\.0:\d+\/$/);
    } finally {
      expect(await s.stop()).toBe(0);
    }
  });
});
