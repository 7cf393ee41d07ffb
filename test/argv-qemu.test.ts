/**
 * The argv fixtures are valid QEMU 7.2 syntax: every fixture that builds a command is started
 * for real (paused with -S, so no guest code runs) against real image files of the right
 * format, whose names keep the fixture's commas, quotes and spaces. QEMU must reach QMP, be in
 * `prelaunch`, and show every device id the command line asked for; then it is told to quit.
 * The KVM fixture is left out: /dev/kvm is not a given (and nested KVM hangs here).
 */
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { loadDefinition, parseDefinition, validateDefinition, type DomainDefinition, type LifecycleAction } from '../src/conf/index.js';
import { READY_MARKER } from '../src/guestkit/index.js';
import { blockdevProps, buildCommand, diskDeviceProps, runPaths, type CommandContext } from '../src/qemu/command/index.js';
import { startVirtiofsd, stopVirtiofsds } from '../src/qemu/virtiofs/index.js';
import { listArgvFixtures, loadArgvFixture } from './argv-fixtures.js';
import { testGuestDefinition } from './helpers/guests.js';

const cacheDir = resolve('test/.cache');
mkdirSync(cacheDir, { recursive: true });
// On the repository's disk, not a tmpfs: cache=none needs O_DIRECT.
const workDir = mkdtempSync(join(cacheDir, 'argv-'));
// Run directories hold unix sockets, whose paths must stay under 108 bytes: keep them short.
const runRoot = mkdtempSync(join(tmpdir(), 'vk-argv-'));
afterAll(() => {
  rmSync(workDir, { recursive: true, force: true });
  rmSync(runRoot, { recursive: true, force: true });
});

const kernel = readdirSync('/boot').filter((f) => f.startsWith('vmlinuz-')).sort().map((f) => join('/boot', f))[0];

let counter = 0;
/** A real file standing in for `original`: same base name (commas, quotes and all). */
function stagedFile(original: string, make: (path: string) => void): string {
  const dir = join(workDir, `f${counter++}`);
  mkdirSync(dir);
  const path = join(dir, basename(original));
  make(path);
  return path;
}

function image(original: string, format: 'raw' | 'qcow2'): string {
  return stagedFile(original, (path) => {
    if (format === 'raw') writeFileSync(path, Buffer.alloc(1024 * 1024));
    else {
      const result = spawnSync('qemu-img', ['create', '-q', '-f', 'qcow2', path, '1M'], { encoding: 'utf8' });
      if (result.status !== 0) throw new Error(`qemu-img create failed: ${result.stderr}`);
    }
  });
}

function kernelFile(original: string): string {
  if (kernel === undefined) throw new Error('no /boot/vmlinuz-* on this host (install linux-image-amd64)');
  return stagedFile(original, (path) => copyFileSync(kernel, path));
}

const OvmfVarsTemplate = '/usr/share/OVMF/OVMF_VARS_4M.fd';

function smallFile(original: string): string {
  return stagedFile(original, (path) => writeFileSync(path, 'initrd'));
}

/** The fixture's definition and context with every host file replaced by a real one. */
function stage(def: DomainDefinition, ctx: CommandContext, runDir: string): { def: DomainDefinition; ctx: CommandContext } {
  const staged = structuredClone(def);
  const stagedCtx: CommandContext = { ...structuredClone(ctx), runDir };
  if (staged.boot.loader === 'direct') {
    staged.boot.kernel = kernelFile(staged.boot.kernel);
    if (staged.boot.initrd !== undefined) staged.boot.initrd = smallFile(staged.boot.initrd);
  }
  if (stagedCtx.bootFiles !== undefined) {
    stagedCtx.bootFiles.kernel = kernelFile(stagedCtx.bootFiles.kernel);
    if (stagedCtx.bootFiles.initrd !== undefined) stagedCtx.bootFiles.initrd = smallFile(stagedCtx.bootFiles.initrd);
  }
  // UEFI: OVMF's code as installed, the variable store a copy of OVMF's template (the driver
  // makes one per domain beside its state; the fixture's path does not exist on this host).
  if (stagedCtx.firmware !== undefined) {
    stagedCtx.firmware.vars = stagedFile(stagedCtx.firmware.vars, (path) => copyFileSync(OvmfVarsTemplate, path));
  }
  // Shared folders: real directories (virtiofsd is started for the virtio-fs ones by the test).
  for (const fs of staged.filesystems ?? []) fs.source = stagedFile(fs.source, (path) => mkdirSync(path));
  for (const disk of staged.disks) {
    if (disk.source !== undefined) disk.source = image(disk.source, disk.format);
    else if (disk.volume !== undefined && stagedCtx.volumePaths?.[disk.volume] !== undefined) {
      stagedCtx.volumePaths[disk.volume] = image(stagedCtx.volumePaths[disk.volume] ?? '', disk.format);
    }
  }
  return { def: staged, ctx: stagedCtx };
}

/** Minimal QMP exchange: greeting, capabilities, then the given commands in order. */
async function qmpSession(socketPath: string, commands: object[]): Promise<unknown[]> {
  const socket = createConnection(socketPath);
  socket.setEncoding('utf8');
  const replies: unknown[] = [];
  let buffer = '';
  let sent = 0;
  return await new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => { socket.destroy(); reject(new Error('QMP timed out')); }, 15_000);
    socket.on('error', (err) => { clearTimeout(timer); reject(err); });
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      let newline: number;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const message = JSON.parse(buffer.slice(0, newline)) as Record<string, unknown>;
        buffer = buffer.slice(newline + 1);
        if ('event' in message) continue;
        if ('QMP' in message) { socket.write('{"execute":"qmp_capabilities"}\n'); continue; }
        if (sent > 0) replies.push(message);
        if (sent < commands.length) socket.write(`${JSON.stringify(commands[sent++])}\n`);
        else { clearTimeout(timer); socket.end(); resolvePromise(replies); }
      }
    });
  });
}

async function waitForSocket(path: string, exited: () => string | undefined): Promise<void> {
  for (let i = 0; i < 300; i++) {
    const problem = exited();
    if (problem !== undefined) throw new Error(problem);
    const ok = await new Promise<boolean>((done) => {
      const probe = createConnection(path);
      probe.on('connect', () => { probe.destroy(); done(true); });
      probe.on('error', () => done(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`QMP socket ${path} never appeared`);
}

const cases = listArgvFixtures().filter((f) => f.expect === 'args').map((f) => ({ fixture: f, outcome: loadArgvFixture(f) }))
  .filter((c) => c.outcome.kind === 'command' && c.outcome.ctx.accel === 'tcg');

describe('argv fixtures start a real QEMU', () => {
  test('cover nearly every fixture', () => {
    expect(cases.length).toBeGreaterThanOrEqual(25);
  });

  test.concurrent.each(cases.map((c, i) => [c.fixture.name, c, i] as const))('%s', async (_name, c, i) => {
    if (c.outcome.kind !== 'command') throw new Error('unreachable');
    // Commas, "=", quotes and a space in the run directory exercise -chardev/-vnc escaping every time.
    const runDir = join(runRoot, `r,"${i}" x=y`);
    mkdirSync(runDir);
    const { def, ctx } = stage(c.outcome.def, c.outcome.ctx, runDir);
    const command = buildCommand(def, ctx);
    // QEMU connects to each virtio-fs share's vhost-user socket at start: virtiofsd must be there.
    const drivers = ctx.filesystemDrivers ?? [];
    for (const [index, fs] of (def.filesystems ?? []).entries()) {
      if (drivers[index] === 'virtiofs') await startVirtiofsd(fs, runDir, index);
    }
    const child = spawn(command.binary, [...command.argv, '-S'], { env: { ...process.env, ...command.env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let exitStatus: number | null | undefined;
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const exited = new Promise<void>((done) => child.on('exit', (code) => { exitStatus = code; done(); }));
    try {
      await waitForSocket(runPaths(runDir).qmpSocket, () => (exitStatus === undefined ? undefined : `QEMU exited (${exitStatus}): ${stderr}`));
      // The QMP socket is listening before QEMU has finished creating the other files of the
      // command line; its first answer comes from the main loop, after all of them.
      const [status, peripherals] = await qmpSession(runPaths(runDir).qmpSocket, [
        { execute: 'query-status' },
        { execute: 'qom-list', arguments: { path: '/machine/peripheral' } },
      ]) as [{ return: { status: string } }, { return: Array<{ name: string }> }];
      // The files land exactly where runPaths says, despite the hostile run directory name
      // (QEMU removes its pidfile when it quits, so look now).
      expect(existsSync(runPaths(runDir).pidFile), 'pidfile').toBe(true);
      expect(existsSync(runPaths(runDir).consoleLog), 'console log').toBe(def.serial);
      await qmpSession(runPaths(runDir).qmpSocket, [{ execute: 'quit' }]);
      expect(status.return.status).toBe('prelaunch');
      const wantedIds = command.argv.flatMap((arg, j) => {
        if (command.argv[j - 1] !== '-device') return [];
        const id = (JSON.parse(arg) as { id?: string }).id;
        return id === undefined ? [] : [id];
      });
      const present = peripherals.return.map((p) => p.name);
      for (const id of wantedIds) expect(present, `device ${id}`).toContain(id);
      await exited;
      expect(stderr).not.toMatch(/error/i);
    } finally {
      if (exitStatus === undefined) child.kill('SIGKILL');
      await exited;
      await stopVirtiofsds(runDir);
    }
  });
});

/**
 * The lifecycle mapping (docs/argv-fixtures.md) does what it promises: a guest reset (the
 * keyboard controller's reset line) and a guest panic (the pvpanic port), poked through HMP,
 * leave QEMU running, stopped or gone as documented for on_reboot / on_crash.
 */
async function provoke(def: DomainDefinition, hmp: string, i: number): Promise<{ events: string[]; exited: boolean; status?: string }> {
  const runDir = join(runRoot, `l${i}`);
  mkdirSync(runDir);
  const command = buildCommand(def, { binary: 'qemu-system-x86_64', accel: 'tcg', runDir });
  // Not paused: a guest stopped in prelaunch would not show the state the action puts it in.
  const child = spawn(command.binary, command.argv, { stdio: 'ignore' });
  let exitStatus: number | null | undefined;
  const exited = new Promise<void>((done) => child.on('exit', (code) => { exitStatus = code; done(); }));
  try {
    await waitForSocket(runPaths(runDir).qmpSocket, () => (exitStatus === undefined ? undefined : `QEMU exited early (${exitStatus})`));
    const socket = createConnection(runPaths(runDir).qmpSocket);
    socket.setEncoding('utf8');
    const events: string[] = [];
    let status: string | undefined;
    let buffer = '';
    let step = 0;
    const send = (cmd: object): void => { socket.write(`${JSON.stringify(cmd)}\n`); };
    await new Promise<void>((done) => {
      socket.on('close', () => done());
      socket.on('error', () => done());
      socket.on('data', (chunk: string) => {
        buffer += chunk;
        let nl: number;
        while ((nl = buffer.indexOf('\n')) >= 0) {
          const msg = JSON.parse(buffer.slice(0, nl)) as { QMP?: unknown; event?: string; data?: { reason?: string }; return?: { status?: string } };
          buffer = buffer.slice(nl + 1);
          if (msg.QMP !== undefined) send({ execute: 'qmp_capabilities' });
          else if (msg.event !== undefined) events.push(msg.data?.reason === undefined ? msg.event : `${msg.event}:${msg.data.reason}`);
          else if (step === 0) { step = 1; send({ execute: 'human-monitor-command', arguments: { 'command-line': hmp } }); setTimeout(() => send({ execute: 'query-status' }), 1500); }
          else if (step === 1) step = 2; // the HMP reply
          else if (step === 2) { step = 3; status = msg.return?.status; send({ execute: 'quit' }); }
        }
      });
    });
    await exited;
    const exitedByItself = status === undefined;
    // Repeats are collapsed: SeaBIOS, restarted by a reset, may pulse the reset line again.
    const seen = events.filter((e, k) => e !== 'STOP' && !e.endsWith('host-qmp-quit') && events.indexOf(e) === k);
    return { events: seen, exited: exitedByItself, ...(status === undefined ? {} : { status }) };
  } finally {
    if (exitStatus === undefined) child.kill('SIGKILL');
    await exited;
  }
}

describe('lifecycle actions in a real QEMU', () => {
  const combos: Array<[LifecycleAction, LifecycleAction, LifecycleAction]> = [
    ['destroy', 'restart', 'destroy'], ['destroy', 'destroy', 'restart'], ['preserve', 'destroy', 'preserve'], ['restart', 'preserve', 'destroy'],
  ];
  test.concurrent.each(combos.map((c, i) => [...c, i] as const))('on_poweroff %s, on_reboot %s, on_crash %s', async (poweroff, reboot, crash, i) => {
    const def = parseDefinition(`name: l${i}\nmemory: 64MiB\non_poweroff: ${poweroff}\non_reboot: ${reboot}\non_crash: ${crash}\n`);
    const reset = await provoke(def, 'o /b 0x64 0xfe', 2 * i);
    if (reboot === 'restart') expect(reset).toEqual({ events: ['RESET:guest-reset'], exited: false, status: 'running' });
    else if (reboot === 'destroy' && poweroff === 'destroy') expect(reset).toEqual({ events: ['SHUTDOWN:guest-reset'], exited: true });
    else expect(reset).toEqual({ events: ['SHUTDOWN:guest-reset'], exited: false, status: 'shutdown' });

    const panic = await provoke(def, 'o /b 0x505 1', 2 * i + 1);
    // QEMU leaves by itself only when its shutdown action is poweroff; otherwise it keeps the
    // panicked guest and the manager, seeing SHUTDOWN(guest-panic), quits it.
    const qemuExitsOnShutdown = poweroff === 'destroy' && reboot !== 'preserve';
    if (crash === 'destroy' && qemuExitsOnShutdown) expect(panic).toEqual({ events: ['GUEST_PANICKED', 'SHUTDOWN:guest-panic'], exited: true });
    else if (crash === 'destroy') expect(panic).toEqual({ events: ['GUEST_PANICKED', 'SHUTDOWN:guest-panic'], exited: false, status: 'guest-panicked' });
    else expect(panic).toEqual({ events: ['GUEST_PANICKED'], exited: false, status: 'guest-panicked' });
  });
});

/** Runs `script` in the guest's console shell and returns what it printed between two markers. */
async function guestShell(socketPath: string, script: string): Promise<string> {
  const socket = createConnection(socketPath);
  socket.setEncoding('utf8');
  let output = '';
  return await new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => { socket.destroy(); reject(new Error(`guest shell timed out; it printed: ${output}`)); }, 60_000);
    socket.on('error', (err) => { clearTimeout(timer); reject(err); });
    // The markers are computed by the shell, so the echo of the typed line does not match them.
    socket.on('connect', () => socket.write(`\necho vk-begin-$((6*7)); ${script}; echo vk-end-$((6*8))\n`));
    socket.on('data', (chunk: string) => {
      output += chunk;
      const match = /vk-begin-42\r?\n([\s\S]*)vk-end-48/.exec(output);
      if (match !== null) { clearTimeout(timer); socket.destroy(); resolvePromise(match[1] ?? ''); }
    });
  });
}

/**
 * The scsi controller every PCI guest gets by default does not get in a real guest's way, and
 * is what makes a SCSI disk hot-pluggable: the guest kit guest boots with a virtio and a scsi
 * disk and a NIC, then takes a scsi disk plugged through QMP with the same props builders the
 * command line uses.
 */
describe('a guest kit guest on the default command line', () => {
  test('boots, finds its disks by target, and takes a hot-plugged scsi disk', async () => {
    const base = await loadDefinition(testGuestDefinition());
    const raw = (name: string): string => image(`/${name}.raw`, 'raw');
    const def = validateDefinition({
      ...base,
      disks: [{ source: raw('root'), format: 'raw' }, { id: 'data', source: raw('data'), format: 'raw', bus: 'scsi', target: 'sdc' }],
      nics: [{}],
    });
    expect(def.controllers.scsi).toBe('auto');
    const runDir = join(runRoot, 'guest');
    mkdirSync(runDir);
    const command = buildCommand(def, { binary: 'qemu-system-x86_64', accel: 'tcg', runDir });
    const child = spawn(command.binary, command.argv, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let exitStatus: number | null | undefined;
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const exited = new Promise<void>((done) => child.on('exit', (code) => { exitStatus = code; done(); }));
    const paths = runPaths(runDir);
    try {
      await waitForSocket(paths.qmpSocket, () => (exitStatus === undefined ? undefined : `QEMU exited (${exitStatus}): ${stderr}`));
      for (let i = 0; i < 1200 && !(existsSync(paths.consoleLog) && readFileSync(paths.consoleLog, 'utf8').includes(READY_MARKER)); i++) {
        if (exitStatus !== undefined) throw new Error(`QEMU exited (${exitStatus}): ${stderr}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(readFileSync(paths.consoleLog, 'utf8')).toContain(READY_MARKER);

      // Hot-plug sda: the same objects as -blockdev/-device at start, sent as QMP arguments.
      const plugged = validateDefinition({ ...def, disks: [...def.disks, { source: raw('plugged'), format: 'raw', bus: 'scsi' }] }).disks[2];
      if (plugged === undefined) throw new Error('no plugged disk');
      expect([plugged.id, plugged.target]).toEqual(['sda', 'sda']);
      const nodes = blockdevProps(plugged, plugged.source ?? '');
      const replies = await qmpSession(paths.qmpSocket, [
        { execute: 'blockdev-add', arguments: nodes.file },
        { execute: 'blockdev-add', arguments: nodes.format },
        { execute: 'device_add', arguments: diskDeviceProps(plugged, { machine: def.machine }) },
        { execute: 'qom-list', arguments: { path: '/machine/peripheral' } },
      ]) as Array<{ return?: unknown; error?: unknown }>;
      expect(replies.slice(0, 3)).toEqual([{ return: {} }, { return: {} }, { return: {} }]);
      const peripherals = (replies[3]?.return as Array<{ name: string }>).map((p) => p.name);
      expect(peripherals).toEqual(expect.arrayContaining(['scsi0', 'vda', 'data', 'sda', 'net0']));

      // In the guest: vda on virtio; data at SCSI target 2 (sdc), the hot-plugged disk at target 0.
      const seen = await guestShell(paths.consoleSocket,
        'for i in 1 2 3 4 5 6 7 8 9 10; do [ -e /sys/bus/scsi/devices/0:0:0:0 ] && break; sleep 1; done; ls /sys/block /sys/bus/scsi/devices');
      expect(seen).toMatch(/\bvda\b/);
      expect(seen).toContain('0:0:2:0');
      expect(seen).toContain('0:0:0:0');
      await qmpSession(paths.qmpSocket, [{ execute: 'quit' }]);
      await exited;
      expect(stderr).not.toMatch(/error/i);
    } finally {
      if (exitStatus === undefined) child.kill('SIGKILL');
      await exited;
    }
  });
});
