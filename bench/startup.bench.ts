/**
 * CLI start-up: whole-process wall time of `virtkit list` (a daemon with 11 defined domains
 * answering) and `virtkit fs cat` (one small file of an ext4 image) against `node -e 0` on the
 * same machine in the same run. Target: within 30 ms of node's own start.
 *
 * Beside the times, what each run compiles (from V8's coverage of one run): files of virtkit,
 * of node_modules, and Node's own modules; and the same commands run unbundled (dist/src, as
 * before the per-verb bundles of scripts/build-cli.mjs) for comparison.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from '../src/client/index.js';
import { buildGuest } from '../src/guestkit/index.js';
import { processMs } from './references.js';
import { targetLine } from './stats.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const cli = join(root, 'bin', 'virtkit.js');
const Runs = 21;
const Rounds = 7;

/** The CLI as it ran before the bundles: the command tree of dist/src, loaded module by module. */
const unbundled = `import(${JSON.stringify(pathToFileURL(join(root, 'dist', 'src', 'cli', 'main.js')).href)}).then(async (m) => { process.exitCode = await m.main(process.argv.slice(1)); })`;

interface Coverage { result: { url: string }[] }

/**
 * Median CPU time (user + system) of `argv` over `runs` runs, from the shell's `times`:
 * unlike wall time it does not grow while the process waits for a core, so it moves less
 * when the machine is shared.
 */
function processCpuMs(argv: readonly string[], runs: number, env: NodeJS.ProcessEnv): number {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const r = spawnSync('bash', ['-c', '"$@" >/dev/null 2>&1; times', 'bench', ...argv], { encoding: 'utf8', env });
    const children = r.stdout.trim().split('\n')[1] ?? '';
    const secs = [...children.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
    if (secs.length !== 2) throw new Error(`cannot read the CPU time of ${argv.join(' ')}: ${r.stdout}`);
    times.push((secs[0]! + secs[1]!) * 1000);
  }
  times.sort((a, b) => a - b);
  return times[times.length >> 1]!;
}

/** What one run of `argv` compiled: files of virtkit, of node_modules, and Node's own modules. */
async function compiledBy(argv: readonly string[], env: NodeJS.ProcessEnv, dir: string): Promise<string> {
  spawnSync(argv[0]!, argv.slice(1), { stdio: 'ignore', env: { ...env, NODE_V8_COVERAGE: dir } });
  const urls = new Set<string>();
  for (const name of await readdir(dir)) {
    for (const script of (JSON.parse(await readFile(join(dir, name), 'utf8')) as Coverage).result) urls.add(script.url);
  }
  const files = [...urls].filter((u) => u.startsWith('file:'));
  const ours = files.filter((u) => !u.includes('/node_modules/'));
  const names = ours.length > 0 && ours.length <= 3 ? ` (${ours.map((u) => fileURLToPath(u).slice(root.length + 1)).join(', ')})` : '';
  return `${ours.length} of virtkit${names}, ${files.length - ours.length} of node_modules, `
    + `${[...urls].filter((u) => u.startsWith('node:')).length} of Node's own`;
}

export async function run(): Promise<void> {
  const work = await mkdtemp('/tmp/vk-bench-startup-');
  let daemon: ChildProcess | undefined;
  try {
    const stateDir = join(work, 's');
    daemon = spawn(process.execPath, [cli, 'daemon', '--state-dir', stateDir, '--log-level', 'warn'], { stdio: 'ignore' });
    const socket = join(stateDir, 'virtkit.sock');
    const c = connect(socket);
    try {
      for (let i = 0; ; i++) {
        try { await c.daemonInfo(); break; } catch (err) { if (i > 300) throw err; await sleep(50); }
      }
      const guest = await buildGuest({ dir: join(work, 'g'), name: 'start' });
      const text = await readFile(guest.definitionPath, 'utf8');
      for (let i = 0; i < 11; i++) await c.define(text.replace(/^name: .*$/m, `name: d${i}`), { baseDir: dirname(guest.definitionPath) });
    } finally {
      c.close();
    }
    const src = join(work, 'tree');
    await mkdir(join(src, 'etc'), { recursive: true });
    await writeFile(join(src, 'etc', 'hostname'), 'bench\n');
    const image = join(work, 'disk.img');
    const made = spawnSync('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', src, image, '64M']);
    if (made.status !== 0) throw new Error(`mke2fs failed: ${made.stderr.toString()}`);

    // The bundles as the sources make them (a no-op after npm run build).
    const built = spawnSync(process.execPath, [join(root, 'scripts', 'build-cli.mjs')], { stdio: 'inherit' });
    if (built.status !== 0) throw new Error('scripts/build-cli.mjs failed');
    const env = { ...process.env, VIRTKIT_CONNECT: socket };
    // Interleaved rounds of three runs each (the figure is the best round's median), so a burst
    // of load elsewhere on the machine hits every command alike.
    const node: number[] = [];
    const version: number[] = [];
    const list: number[] = [];
    const cat: number[] = [];
    const listUnbundled: number[] = [];
    const catUnbundled: number[] = [];
    const listArgs = ['list', '--all'];
    const catArgs = ['fs', 'cat', image, '/etc/hostname'];
    for (let round = 0; round < Rounds; round++) {
      node.push(processMs([process.execPath, '-e', '0'], Runs / Rounds, env));
      version.push(processMs([process.execPath, cli, '--version'], Runs / Rounds, env));
      list.push(processMs([process.execPath, cli, ...listArgs], Runs / Rounds, env));
      cat.push(processMs([process.execPath, cli, ...catArgs], Runs / Rounds, env));
      listUnbundled.push(processMs([process.execPath, '-e', unbundled, ...listArgs], Runs / Rounds, env));
      catUnbundled.push(processMs([process.execPath, '-e', unbundled, ...catArgs], Runs / Rounds, env));
    }
    const best = (xs: number[]): number => Math.min(...xs);
    const floor = best(node);
    const plus = (xs: number[]): string => `${best(xs).toFixed(1)} ms (+${(best(xs) - floor).toFixed(1)})`;
    console.log(`node -e 0: ${floor.toFixed(1)} ms; virtkit --version ${plus(version)}`);
    console.log(`unbundled (dist/src, module by module): list --all ${plus(listUnbundled)}, fs cat ${plus(catUnbundled)}`);
    const coverage = join(work, 'coverage');
    console.log(`compiled by node -e 0: ${await compiledBy([process.execPath, '-e', '0'], env, `${coverage}-node`)}`);
    console.log(`compiled by virtkit list --all: ${await compiledBy([process.execPath, cli, ...listArgs], env, `${coverage}-list`)}`);
    console.log(`compiled by virtkit fs cat: ${await compiledBy([process.execPath, cli, ...catArgs], env, `${coverage}-cat`)}`);
    console.log(`compiled by the unbundled list --all: ${await compiledBy([process.execPath, '-e', unbundled, ...listArgs], env, `${coverage}-list-unbundled`)}`);
    console.log(`compiled by the unbundled fs cat: ${await compiledBy([process.execPath, '-e', unbundled, ...catArgs], env, `${coverage}-cat-unbundled`)}`);
    const cpuFloor = processCpuMs([process.execPath, '-e', '0'], Runs, env);
    const cpu = (args: readonly string[]): string => {
      const ms = processCpuMs([process.execPath, cli, ...args], Runs, env);
      return `${ms.toFixed(0)} ms (+${(ms - cpuFloor).toFixed(0)})`;
    };
    console.log(`CPU time (median of ${Runs}, user + system): node -e 0 ${cpuFloor.toFixed(0)} ms; virtkit list --all ${cpu(listArgs)}; virtkit fs cat ${cpu(catArgs)}`);
    for (const [label, xs] of [['virtkit list --all (11 domains)', list], ['virtkit fs cat (ext4 image)', cat]] as const) {
      const ms = best(xs);
      console.log(targetLine(`7 ${label} within 30 ms of node -e 0`, ms - floor <= 30,
        `virtkit ${ms.toFixed(1)} ms, node -e 0 ${floor.toFixed(1)} ms, +${(ms - floor).toFixed(1)} ms, ratio ${(ms / floor).toFixed(3)}`));
    }
  } finally {
    daemon?.kill('SIGKILL');
    await rm(work, { recursive: true, force: true });
  }
}
