/**
 * Boots the guest kit guests with the real qemu-system-x86_64 under TCG, with a minimal argv
 * of our own (no virtkit launcher involved, so a failure here points at the guest itself):
 * serial console on stdio, QMP on a unix socket. One boot per guest, shared by its tests.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDefinition } from '../../src/conf/index.js';
import { READY_MARKER } from '../../src/guestkit/index.js';
import { guestPaths, testGuest, testGuestNoAcpi } from '../helpers/guests.js';

const BOOT_TIMEOUT_MS = 150_000;

interface QmpMessage {
  event?: string;
  data?: Record<string, unknown>;
  return?: unknown;
  error?: { class: string; desc: string };
  QMP?: unknown;
}

/** Just enough QMP for these tests: greeting, capabilities, one command at a time, events. */
class MiniQmp {
  readonly events: QmpMessage[] = [];
  private buffered = '';
  private waiters: Array<(msg: QmpMessage) => void> = [];

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buffered += chunk;
      let nl: number;
      while ((nl = this.buffered.indexOf('\n')) >= 0) {
        const line = this.buffered.slice(0, nl).trim();
        this.buffered = this.buffered.slice(nl + 1);
        if (line === '') continue;
        const msg = JSON.parse(line) as QmpMessage;
        if (msg.event !== undefined) this.events.push(msg);
        else this.waiters.shift()?.(msg);
      }
    });
    socket.on('error', () => undefined);
  }

  static async connect(path: string): Promise<MiniQmp> {
    // QEMU creates the socket early in its start-up; retry until it is there.
    for (let attempt = 0; ; attempt++) {
      try {
        const socket = await new Promise<Socket>((resolve, reject) => {
          const s = connect(path, () => resolve(s));
          s.once('error', reject);
        });
        const qmp = new MiniQmp(socket);
        await qmp.next(); // greeting
        await qmp.execute('qmp_capabilities');
        return qmp;
      } catch (err) {
        if (attempt >= 100) throw err;
        await sleep(100);
      }
    }
  }

  private next(): Promise<QmpMessage> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  async execute(command: string): Promise<unknown> {
    const reply = this.next();
    this.socket.write(JSON.stringify({ execute: command }) + '\n');
    const msg = await reply;
    if (msg.error !== undefined) throw new Error(`${command}: ${msg.error.desc}`);
    return msg.return;
  }

  close(): void {
    this.socket.destroy();
  }
}

class BootedGuest {
  console = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  qmp: MiniQmp | undefined;

  private constructor(
    private readonly proc: ChildProcessByStdio<Writable, Readable, Readable>,
    readonly runDir: string,
  ) {
    proc.stdout.setEncoding('utf8');
    proc.stdout.on('data', (chunk: string) => (this.console += chunk));
    proc.stderr.setEncoding('utf8');
    proc.stderr.on('data', (chunk: string) => (this.console += chunk));
    this.exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  }

  /**
   * Boots what the guest's own definition says: its kernel, initrd, command line and memory.
   * `devices` adds QEMU arguments (a disk, a NIC) to check the drivers.
   */
  static async boot(dir: string, devices: (runDir: string) => string[] = () => []): Promise<BootedGuest> {
    const def = await loadDefinition(guestPaths(dir).definitionPath);
    if (def.boot.loader !== 'direct') throw new Error(`${dir}: the guest kit writes a direct kernel boot`);
    const runDir = mkdtempSync(join(tmpdir(), 'virtkit-guestkit-'));
    const qmpPath = join(runDir, 'qmp.sock');
    const argv = [
      '-nodefaults', '-no-user-config', '-machine', 'pc,accel=tcg', '-m', `${def.memory / 1024 / 1024}`, '-display', 'none',
      '-kernel', def.boot.kernel, '-initrd', def.boot.initrd ?? '', '-append', def.boot.cmdline ?? '',
      '-chardev', 'stdio,id=console,signal=off', '-serial', 'chardev:console',
      '-qmp', `unix:${qmpPath},server=on,wait=off`,
      ...devices(runDir),
    ];
    const proc = spawn('qemu-system-x86_64', argv, { stdio: ['pipe', 'pipe', 'pipe'] });
    const guest = new BootedGuest(proc, runDir);
    try {
      guest.qmp = await MiniQmp.connect(qmpPath);
    } catch (err) {
      guest.kill(); // no caller holds the guest yet, so nobody else would
      throw err;
    }
    return guest;
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Resolves with the console text after `from` once it contains `text`. */
  async waitFor(text: string, from: number, timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (!this.console.slice(from).includes(text)) {
      if (!this.running) throw new Error(`QEMU exited while waiting for ${JSON.stringify(text)}; console:\n${this.console}`);
      if (Date.now() > deadline) throw new Error(`no ${JSON.stringify(text)} within ${timeoutMs} ms; console:\n${this.console}`);
      await sleep(50);
    }
    return this.console.slice(from);
  }

  type(line: string): void {
    this.proc.stdin.write(line + '\n');
  }

  kill(): void {
    this.qmp?.close();
    if (this.running) this.proc.kill('SIGKILL');
    rmSync(this.runDir, { recursive: true, force: true });
  }
}

describe('guest kit guest (ACPI)', () => {
  let guest: BootedGuest;
  beforeAll(async () => {
    guest = await BootedGuest.boot(testGuest(), (runDir) => {
      const disk = join(runDir, 'disk.raw');
      writeFileSync(disk, Buffer.alloc(4 * 1024 * 1024));
      return [
        '-drive', `file=${disk},format=raw,if=virtio`,
        '-netdev', 'user,id=net0', '-device', 'virtio-net-pci,netdev=net0',
      ];
    });
  });
  afterAll(() => guest?.kill());

  it('prints the ready marker on ttyS0', async () => {
    await guest.waitFor(READY_MARKER, 0, BOOT_TIMEOUT_MS);
  }, BOOT_TIMEOUT_MS + 10_000);

  it('runs a command typed on the serial console', async () => {
    await guest.waitFor(READY_MARKER, 0, BOOT_TIMEOUT_MS);
    await guest.waitFor('# ', guest.console.indexOf(READY_MARKER), 30_000); // the shell's prompt
    const typedAt = guest.console.length;
    guest.type('echo hello-$((6*7))');
    await guest.waitFor('hello-42', typedAt, 30_000);
  }, BOOT_TIMEOUT_MS + 70_000);

  it('has its virtio disk and NIC drivers loaded, the NIC configured for user networking', async () => {
    await guest.waitFor('hello-42', 0, BOOT_TIMEOUT_MS);
    const typedAt = guest.console.length;
    // 4MiB is 8192 sectors. Computed markers (checked-2) appear only in output, never in the echoed input.
    guest.type('echo vda=$(cat /sys/block/vda/size); ip -4 -o addr show dev eth0; echo checked-$((1+1))');
    const out = await guest.waitFor('checked-2', typedAt, 30_000);
    expect(out).toMatch(/vda=8192\r?\n/);
    expect(out).toMatch(/inet 10\.0\.2\.15\/24/);
  }, BOOT_TIMEOUT_MS + 70_000);

  it('powers off on the ACPI power button: QEMU exits on its own', async () => {
    await guest.qmp?.execute('system_powerdown');
    const exit = await Promise.race([guest.exited, sleep(60_000).then(() => 'timeout' as const)]);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(guest.qmp?.events.find((e) => e.event === 'SHUTDOWN')?.data).toMatchObject({ guest: true });
    expect(guest.console).toContain('power button pressed');
  });
});

describe('guest kit guest (--no-acpi)', () => {
  let guest: BootedGuest;
  beforeAll(async () => {
    guest = await BootedGuest.boot(testGuestNoAcpi());
    await guest.waitFor(READY_MARKER, 0, BOOT_TIMEOUT_MS);
  }, BOOT_TIMEOUT_MS + 10_000);
  afterAll(() => guest?.kill());

  it('ignores the power button: still running 5 s after system_powerdown', async () => {
    await guest.qmp?.execute('system_powerdown');
    await sleep(5_000);
    expect(guest.running).toBe(true);
    expect(await guest.qmp?.execute('query-status')).toMatchObject({ status: 'running' });
    expect(guest.qmp?.events.some((e) => e.event === 'SHUTDOWN')).toBe(false);
  });
});
