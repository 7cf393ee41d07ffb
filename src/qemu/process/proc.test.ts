import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isQemuOfRunDir, parsePidfile, provenQemuOfRunDir } from './proc.js';
import { qemuErrorSummary } from './spawn.js';

describe('parsePidfile', () => {
  it('reads one positive integer with optional whitespace', () => {
    expect(parsePidfile('1234\n')).toBe(1234);
    expect(parsePidfile(' 7 ')).toBe(7);
  });

  it('refuses anything else', () => {
    for (const bad of ['', '\n', '0', '-5', '12a', '1 2', '0x10', '99999999999', '1e3', '١٢']) {
      expect(parsePidfile(bad)).toBeUndefined();
    }
  });

  it('returns a pid or undefined for any input, quickly', () => {
    let seed = 7;
    const rand = (n: number): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
    const alphabet = '0123456789 \n\t-+x.a\u0000';
    for (let i = 0; i < 10_000; i++) {
      let s = '';
      const len = rand(16);
      for (let j = 0; j < len; j++) s += alphabet[rand(alphabet.length)];
      const pid = parsePidfile(s);
      if (pid !== undefined) expect(Number.isInteger(pid) && pid > 0).toBe(true);
    }
  });
});

describe('isQemuOfRunDir', () => {
  const sock = '/run/virtkit/demo/qmp.sock';
  const uuid = '6f1c3a52-3d3e-4c43-9a4e-0d1f2e3c4b5a';
  const qemu = ['/usr/bin/qemu-system-x86_64', '-uuid', uuid, '-chardev', `socket,id=qmp,path=${sock},server=on,wait=off`];

  it('accepts the QEMU naming this socket (and uuid)', () => {
    expect(isQemuOfRunDir(qemu, sock)).toBe(true);
    expect(isQemuOfRunDir(qemu, sock, uuid.toUpperCase())).toBe(true);
    expect(isQemuOfRunDir(['qemu-system-x86_64', '-qmp', `unix:${sock},server=on,wait=off`], sock)).toBe(true);
  });

  it('refuses another program, another socket, a prefix of the path or another uuid', () => {
    expect(isQemuOfRunDir(['/usr/bin/node', ...qemu.slice(1)], sock)).toBe(false);
    expect(isQemuOfRunDir(qemu, '/run/virtkit/other/qmp.sock')).toBe(false);
    expect(isQemuOfRunDir(qemu, '/run/virtkit/demo/qmp.so')).toBe(false);
    expect(isQemuOfRunDir(qemu, sock, '00000000-0000-4000-8000-000000000000')).toBe(false);
  });

  it('understands doubled commas in paths', () => {
    const odd = '/tmp/a,b/qmp.sock';
    expect(isQemuOfRunDir(['qemu-system-x86_64', '-chardev', 'socket,id=qmp,path=/tmp/a,,b/qmp.sock,server=on'], odd)).toBe(true);
    expect(isQemuOfRunDir(['qemu-system-x86_64', '-chardev', 'socket,id=qmp,path=/tmp/a,b/qmp.sock,server=on'], odd)).toBe(false);
  });
});

describe('qemuErrorSummary', () => {
  it('keeps QEMU\'s error line and drops warnings and info lines (the console waiting for its client)', () => {
    const stderr = [
      'qemu-system-x86_64: warning: host doesn\'t support requested feature: CPUID.01H:ECX.pni [bit 0]',
      'qemu-system-x86_64: -chardev socket,id=console,path=/run/g/console.sock,server=on,wait=on: info: QEMU waiting for connection on: disconnected:unix:/run/g/console.sock,server=on',
      'qemu-system-x86_64: -blockdev {"driver":"file"}: Could not open \'x.qcow2\': No such file or directory',
      '',
    ].join('\n');
    expect(qemuErrorSummary(stderr)).toBe('qemu-system-x86_64: -blockdev {"driver":"file"}: Could not open \'x.qcow2\': No such file or directory');
    expect(qemuErrorSummary('')).toBe('');
  });
});

describe('provenQemuOfRunDir', () => {
  it('is ours only when program, -pidfile, QMP socket, -uuid, the pidfile\'s pid and the uid all match', async () => {
    const runDir = await mkdtemp(join(tmpdir(), 'vk-proven-'));
    try {
      const uuid = '7e8f2a34-5b6c-4d7e-8f90-a1b2c3d4e5f6';
      const paths = { qmpSocket: join(runDir, 'qmp.sock'), pidFile: join(runDir, 'qemu.pid') };
      // This test's own process stands for the QEMU: the pidfile names it, it runs as our uid.
      await writeFile(paths.pidFile, `${process.pid}\n`);
      const argv = ['/usr/bin/qemu-system-x86_64', '-uuid', uuid, '-pidfile', paths.pidFile,
        '-chardev', `socket,id=qmp,path=${paths.qmpSocket},server=on,wait=off`];
      const verdict = (cmdline: string[], pid = process.pid) => provenQemuOfRunDir(pid, cmdline, runDir, uuid, paths);
      expect(await verdict(argv)).toEqual({ ours: true });
      expect(await verdict(['qemu-kvm', ...argv.slice(1)])).toEqual({ ours: true });
      for (const [why, cmdline, pid] of [
        ['qemu-img', ['qemu-img', 'info', join(runDir, 'disk.fifo')], process.pid],
        ['a renamed program', ['qemu-img', ...argv.slice(1)], process.pid],
        ['another pidfile', argv.map((a) => (a === paths.pidFile ? join(runDir, 'other.pid') : a)), process.pid],
        ['another uuid', argv.map((a) => (a === uuid ? '00000000-0000-4000-8000-000000000000' : a)), process.pid],
        ['no QMP socket', argv.slice(0, 5), process.pid],
        ['a pid the pidfile does not name', argv, process.ppid],
      ] as const) {
        expect((await verdict([...cmdline], pid)).ours, why).toBe(false);
      }
    } finally {
      await rm(runDir, { recursive: true, force: true });
    }
  });
});
