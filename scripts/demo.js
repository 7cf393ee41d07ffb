#!/usr/bin/env node
/**
 * The quick start's main job: build the guest kit guest, start the manager in a local state
 * dir, define and start the guest, wait until it is ready, then show `virtkit list` and what
 * the guest printed on its console. The manager and the guest keep running afterwards;
 * the last lines say how to reach them and how to stop them.
 *
 * Everything goes through the real `virtkit` CLI, exactly as a person would type it.
 * Safe to run again: an existing guest, manager or running domain is reused.
 *
 * Readiness counts only what this start printed: the console log keeps earlier runs' output
 * (ready markers included), so the guest is started paused, a console reader attaches, and
 * only then do its CPUs run. VIRTKIT_DEMO_DIR puts the work directory elsewhere (tests).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, openSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const work = process.env.VIRTKIT_DEMO_DIR ? resolve(process.env.VIRTKIT_DEMO_DIR) : join(root, '.virtkit-demo');
const guestDir = join(work, 'guest');
const stateDir = join(work, 'state');
const socket = join(stateDir, 'virtkit.sock');
const cli = join(root, 'bin', 'virtkit.js');
const env = { ...process.env, VIRTKIT_CONNECT: socket };
const READY = 'virtkit-guest: ready';

function virtkit(args, { capture = false, allowFail = false } = {}) {
  if (!capture) console.log(`$ virtkit ${args.join(' ')}`);
  const r = spawnSync(process.execPath, [cli, ...args], { env, encoding: 'utf8', stdio: capture ? 'pipe' : 'inherit' });
  if (r.status !== 0 && !allowFail) {
    if (capture) process.stderr.write(r.stderr);
    throw new Error(`virtkit ${args.join(' ')} exited with ${r.status}`);
  }
  return r;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * `virtkit console demo --read-only` as a child: its stdout is the live console (no history).
 * `connected` settles once the reader is attached; `sawReady` once this boot printed READY.
 */
function followConsole() {
  const child = spawn(process.execPath, [cli, 'console', 'demo', '--read-only'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  let errors = '';
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const watch = (stream, test) => {
    const seen = new Promise((resolve, reject) => {
      stream.on('data', () => { if (test()) resolve(); });
      void exited.then((code) => reject(new Error(`the console reader exited (${code}): ${errors.trim()}`)));
    });
    seen.catch(() => {}); // awaited by the caller when it matters; never an unhandled rejection
    return seen;
  };
  child.stdout.setEncoding('utf8').on('data', (d) => { output += d; });
  child.stderr.setEncoding('utf8').on('data', (d) => { errors += d; });
  return {
    connected: watch(child.stderr, () => errors.includes('Connected to domain')),
    sawReady: watch(child.stdout, () => output.includes(READY)),
    async stop() {
      child.stdin.end(); // piped input ending detaches the reader
      await exited;
    },
  };
}

/** Start paused, attach a console reader, resume: every byte the reader sees is this boot's. */
async function startUntilReady(state) {
  if (state !== 'paused') virtkit(['start', 'demo', '--paused']);
  const reader = followConsole();
  try {
    await reader.connected;
    virtkit(['resume', 'demo']);
    process.stdout.write('waiting for the guest to be ready');
    const dots = setInterval(() => process.stdout.write('.'), 1000);
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error('the guest did not print its ready marker within 180 s')), 180_000);
    });
    try {
      await Promise.race([reader.sawReady, timeout]);
    } finally {
      clearInterval(dots);
      clearTimeout(timer);
    }
  } finally {
    await reader.stop();
  }
}

async function ensureDaemon() {
  if (existsSync(socket) && virtkit(['list', '--all'], { capture: true, allowFail: true }).status === 0) {
    console.log(`manager already running on ${socket}`);
    return;
  }
  mkdirSync(stateDir, { recursive: true });
  console.log(`$ virtkit daemon --state-dir ${stateDir} &`);
  const out = openSync(join(work, 'daemon.out'), 'a');
  const daemon = spawn(process.execPath, [cli, 'daemon', '--state-dir', stateDir],
    { env, detached: true, stdio: ['ignore', out, out] });
  daemon.unref();
  for (let i = 0; i < 100; i++) {
    if (existsSync(socket) && virtkit(['list'], { capture: true, allowFail: true }).status === 0) return;
    await sleep(200);
  }
  throw new Error(`the manager did not come up; see ${join(work, 'daemon.out')} and ${join(stateDir, 'daemon.log')}`);
}

async function main() {
  mkdirSync(work, { recursive: true });
  if (!existsSync(join(guestDir, 'guest.yaml'))) virtkit(['guestkit', guestDir, '--name', 'demo']);
  await ensureDaemon();

  const info = virtkit(['dominfo', 'demo', '--json'], { capture: true, allowFail: true });
  if (info.status !== 0) virtkit(['define', join(guestDir, 'guest.yaml')]);
  const state = info.status === 0 ? JSON.parse(info.stdout).state : 'shutoff';
  if (state === 'running') console.log('the guest is already running (started earlier)');
  else await startUntilReady(state);
  process.stdout.write('\n\n');
  virtkit(['list', '--all']);
  console.log();
  virtkit(['console', 'demo', '--log']);
  console.log(`
The guest is running under the manager. Go on from here:
  export VIRTKIT_CONNECT=${socket}
  node bin/virtkit.js console demo          # its shell; Ctrl-] detaches
  node bin/virtkit.js dominfo demo
  node bin/virtkit.js shutdown demo         # ACPI power button, forced after the timeout
  kill $(pgrep -f 'virtkit.js daemon --state-dir ${stateDir}')   # stop the manager (guests keep running)
`);
}

main().catch((err) => {
  console.error(`demo: ${err.message}`);
  process.exit(1);
});
