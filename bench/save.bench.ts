/**
 * Save and restore of a 256 MiB guest: `save` and `restore` through the daemon's API (the
 * header, the driver's unix socket copied into the file, QEMU quit; on restore the header
 * checks, a QEMU with -incoming defer fed from the file, the store records) against bare QEMU
 * with the same argv doing the same migration by hand over QMP: `stop`, the bandwidth cap
 * lifted, `migrate exec:cat > FILE`, `quit`, the file fsynced; then `-incoming defer`,
 * `migrate-incoming exec:cat FILE`, `cont`. Both sides learn the migration's end from QEMU's
 * MIGRATION event and write through `cat` (virtkit's driver runs it between QEMU's socket and
 * the file). Save is timed from the request until QEMU is gone and the file complete and on
 * disk; restore until the guest runs again.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import YAML from 'yaml';
import type { VirtkitClient } from '../src/client/index.js';
import { parseDefinition } from '../src/conf/index.js';
import { buildGuest, READY_MARKER } from '../src/guestkit/index.js';
import { buildCommand, probeCapabilities, resolveAccel, type QmpClient } from '../src/qemu/index.js';
import { QemuProcess } from '../src/qemu/process.js';
import { startBenchDaemon } from './daemon-process.js';
import { median, ratioLine, timeMs } from './stats.js';

const RUNS = 5;

const startDaemon = (stateDir: string): Promise<{ proc: ChildProcess; client: VirtkitClient }> => startBenchDaemon(stateDir);

/**
 * Runs `start` (a migrate or migrate-incoming) and resolves when QEMU's MIGRATION event says
 * it completed: the end is learnt the way virtkit learns it, with no polling delay on either side.
 */
async function migrate(qmp: QmpClient, start: () => Promise<unknown>): Promise<void> {
  await qmp.executeUntyped('migrate-set-capabilities', { capabilities: [{ capability: 'events', state: true }] });
  const end = qmp.waitForEvent('MIGRATION', { timeoutMs: 120_000, filter: (ev) => ['completed', 'failed', 'cancelled'].includes(String(ev.data['status'])) });
  end.catch(() => undefined);
  await start();
  const ev = await end;
  if (ev.data['status'] !== 'completed') throw new Error(`migration ${String(ev.data['status'])}`);
}

/** The file on disk, as virtkit's save is before it reports done. */
async function fsyncFile(path: string): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export async function run(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'virtkit-bench-save-'));
  let daemon: ChildProcess | undefined;
  let bare: QemuProcess | undefined;
  try {
    const guest = await buildGuest({ dir: join(work, 'guest'), name: 'savebench' });
    const text = YAML.stringify({ ...(YAML.parse(await readFile(guest.definitionPath, 'utf8')) as object), memory: '256MiB' });
    const baseDir = dirname(guest.definitionPath);
    const def = parseDefinition(text, { baseDir });

    const started = await startDaemon(join(work, 'state'));
    daemon = started.proc;
    const c = started.client;
    await c.define(text, { baseDir });
    await c.start(def.name);
    for (let i = 0; i < 1200 && !(await c.consoleLog(def.name)).includes(READY_MARKER); i++) await sleep(100);

    const caps = await probeCapabilities({ cacheDir: join(work, 'cache') });
    const { accel } = resolveAccel(def.accel, caps);
    const runDir = join(work, 'bare-run');
    const command = buildCommand(def, { binary: caps.binary, accel, runDir });
    bare = await QemuProcess.launchCommand({ command, runDir });
    await bare.resume();
    await sleep(3000); // let the bare guest boot too: both save a booted guest

    const vkFile = join(work, 'vk.save');
    const bareFile = join(work, 'bare.save');
    const ours = { save: [] as number[], restore: [] as number[] };
    const ref = { save: [] as number[], restore: [] as number[] };
    console.log(`guest kit guest, 256 MiB, accel ${accel}; ${RUNS} save + restore rounds each, alternating`);
    for (let i = 0; i < RUNS; i++) {
      ours.save.push(await timeMs(() => c.save(def.name, vkFile)));
      ours.restore.push(await timeMs(() => c.restore(vkFile)));

      const proc: QemuProcess = bare!;
      ref.save.push(await timeMs(async () => {
        await proc.qmp.executeUntyped('stop');
        await proc.qmp.executeUntyped('migrate-set-parameters', { 'max-bandwidth': 2 ** 40 });
        await migrate(proc.qmp, () => proc.qmp.executeUntyped('migrate', { uri: `exec:cat > ${bareFile}` }));
        await proc.destroy();
        await fsyncFile(bareFile);
      }));
      let next: QemuProcess | undefined;
      ref.restore.push(await timeMs(async () => {
        next = await QemuProcess.launchCommand({ command: { ...command, argv: [...command.argv, '-incoming', 'defer'] }, runDir, paused: true });
        const incoming = next;
        await migrate(incoming.qmp, () => incoming.qmp.executeUntyped('migrate-incoming', { uri: `exec:cat ${bareFile}` }));
        await incoming.resume();
      }));
      bare = next;
    }
    const fmt = (xs: number[]): string => xs.map((x) => x.toFixed(0)).join(', ');
    console.log(`virtkit save / restore (ms): ${fmt(ours.save)} / ${fmt(ours.restore)}`);
    console.log(`bare QEMU save / restore (ms): ${fmt(ref.save)} / ${fmt(ref.restore)}`);
    console.log(ratioLine('save of a 256 MiB guest, median', median(ours.save), median(ref.save), 'ms', 'bare QEMU + QMP'));
    console.log(ratioLine('restore of a 256 MiB guest, median', median(ours.restore), median(ref.restore), 'ms', 'bare QEMU + QMP'));
    await c.destroy(def.name);
    c.close();
  } finally {
    await bare?.destroy().catch(() => undefined);
    daemon?.kill('SIGKILL');
    await rm(work, { recursive: true, force: true });
  }
}
