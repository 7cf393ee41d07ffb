/**
 * The web manager (docs/web.md): time from `virtkit ui --print` to a usable guest list in
 * headless chromium (20 guests defined), the page's weight (JS + CSS gzipped, without and
 * with noVNC's chunk; target under 300 KB without), and event-to-screen latency: a state
 * change asked over the API until the list's cell shows it. The references: `virtkit list
 * --all` (the CLI showing the same list) and `virtkit event` printing the same change.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { gzipSync } from 'node:zlib';
import { connect } from '../src/client/index.js';
import { buildGuest } from '../src/guestkit/index.js';
import { median, ratioLine, timeMs } from './stats.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const cli = join(root, 'bin', 'virtkit.js');
const Chromium = '/usr/bin/chromium';
const Guests = 20;
const Rounds = 15;

function virtkit(args: string[], env: Record<string, string>): Promise<string> {
  return new Promise((resolveRun, reject) => {
    const p = spawn(process.execPath, [cli, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolveRun(out) : reject(new Error(`virtkit ${args.join(' ')} exited ${code}`))));
  });
}

async function freePort(): Promise<number> {
  return new Promise((resolvePort) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolvePort(port));
    });
  });
}

/** Gzipped bytes of the page's JS and CSS: all of it, and without the noVNC chunk (rfb-*.js). */
async function pageWeight(): Promise<{ withoutVnc: number; all: number }> {
  const dir = join(root, 'dist', 'web', 'assets');
  let withoutVnc = 0;
  let all = 0;
  for (const f of await readdir(dir)) {
    if (!/\.(js|css)$/.test(f)) continue;
    const gz = gzipSync(await readFile(join(dir, f)), { level: 9 }).length;
    all += gz;
    if (!f.startsWith('rfb-')) withoutVnc += gz;
  }
  return { withoutVnc, all };
}

/** Page scripts, as text: this file is compiled without the DOM's types. */
const ToGuestList = "location.hash = '#/guests'";

/** Resolves with the page's clock (epoch ms) when web00's state cell reads `state`. */
function whenStateShown(state: string): string {
  return `new Promise((resolve) => {
    const cell = () => document.querySelector('tr[data-name="web00"] [data-testid="state"]');
    const check = () => { if (cell()?.textContent === ${JSON.stringify(state)}) { resolve(performance.timeOrigin + performance.now()); return true; } return false; };
    if (check()) return;
    new MutationObserver((_m, obs) => { if (check()) obs.disconnect(); }).observe(document.body, { subtree: true, characterData: true, childList: true });
  })`;
}

export async function run(): Promise<void> {
  const weight = await pageWeight();
  console.log(`page weight (gzipped JS+CSS): ${(weight.withoutVnc / 1024).toFixed(1)} KiB without noVNC (target < 300), ${(weight.all / 1024).toFixed(1)} KiB with it`);
  if (!existsSync(Chromium)) {
    console.log(`no ${Chromium}: the browser figures need Debian's chromium (scripts/setup installs it)`);
    return;
  }
  const { chromium } = await import('playwright-core');
  const work = await mkdtemp('/tmp/vkwebbench-');
  const stateDir = join(work, 's');
  const port = await freePort();
  const env = { VIRTKIT_CONNECT: join(stateDir, 'virtkit.sock') };
  let daemon: ChildProcess | undefined;
  const browser = await chromium.launch({ executablePath: Chromium, args: ['--no-sandbox'] });
  try {
    daemon = spawn(process.execPath, [cli, 'daemon', '--state-dir', stateDir, '--log-level', 'warn', '--http', `127.0.0.1:${port}`], { stdio: 'ignore' });
    const c = connect(env.VIRTKIT_CONNECT);
    for (let i = 0; i < 300; i++) {
      try { await c.daemonInfo(); break; } catch { await sleep(50); }
    }
    const guest = await buildGuest({ dir: join(work, 'g'), name: 'bench' });
    const text = await readFile(guest.definitionPath, 'utf8');
    for (let i = 0; i < Guests; i++) await c.define(text.replace(/^name: .*$/m, `name: web${String(i).padStart(2, '0')}`), { baseDir: guest.dir });

    // ui --print, a fresh page, the list shown with every guest.
    const uiToList: number[] = [];
    const cliList: number[] = [];
    for (let i = 0; i < 5; i++) {
      const context = await browser.newContext();
      const page = await context.newPage();
      uiToList.push(await timeMs(async () => {
        const url = (await virtkit(['ui', '--print'], env)).trim();
        await page.goto(url);
        await page.evaluate(ToGuestList);
        await page.locator(`tr[data-name="web${String(Guests - 1).padStart(2, '0')}"]`).waitFor();
      }));
      await context.close();
      cliList.push(await timeMs(() => virtkit(['list', '--all'], env)));
    }
    console.log(ratioLine(`virtkit ui --print to a usable list of ${Guests} guests (median of 5)`, median(uiToList), median(cliList), 'ms', 'virtkit list --all'));

    // Event-to-screen: suspend/resume a paused-started guest; the API call starts the clock,
    // the list's state cell changing in the page stops it (the page's clock is the same host's).
    await c.start('web00', { paused: true });
    const page = await browser.newPage();
    const url = (await virtkit(['ui', '--print'], env)).trim();
    await page.goto(url);
    await page.evaluate(ToGuestList);
    const cell = page.locator('tr[data-name="web00"] [data-testid="state"]');
    await cell.waitFor();
    const latencies: number[] = [];
    for (let i = 0; i < Rounds; i++) {
      const want = i % 2 === 0 ? 'running' : 'paused';
      const seen = page.evaluate(whenStateShown(want)) as Promise<number>;
      await sleep(20);
      const t0 = performance.timeOrigin + performance.now();
      if (want === 'running') await c.resume('web00'); else await c.suspend('web00');
      latencies.push((await seen) - t0);
      process.stdout.write('.');
    }
    // The reference: the same change printed by `virtkit event` (the CLI's event stream).
    const cliLatencies: number[] = [];
    for (let i = 0; i < 5; i++) {
      // --since 0 replays the history at once, which says the CLI is subscribed; the clock
      // starts once the replay is printed.
      const watcher = spawn(process.execPath, [cli, 'event', '--loop', '--since', '0'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'ignore'] });
      const suspend = i % 2 === 0;
      let subscribed = (): void => undefined;
      const ready = new Promise<void>((r) => { subscribed = r; });
      let t0 = Number.POSITIVE_INFINITY;
      const printed = new Promise<number>((resolvePrinted) => {
        watcher.stdout.on('data', (d: Buffer) => {
          subscribed();
          const now = performance.timeOrigin + performance.now();
          if (now > t0 && d.toString().includes(suspend ? 'suspended' : 'resumed')) resolvePrinted(now);
        });
      });
      await ready;
      await sleep(500);
      t0 = performance.timeOrigin + performance.now();
      if (suspend) await c.suspend('web00'); else await c.resume('web00');
      const timedOut = sleep(15_000).then(() => Number.NaN);
      cliLatencies.push((await Promise.race([printed, timedOut])) - t0);
      watcher.kill();
    }
    console.log(ratioLine(`event-to-screen latency of a state change (median of ${Rounds})`, median(latencies), median(cliLatencies.filter((x) => !Number.isNaN(x))), 'ms', 'virtkit event'));
    c.close();
  } finally {
    // Guests outlive their daemon: stop the one started here before the daemon goes.
    const c = connect(env.VIRTKIT_CONNECT);
    await c.destroy('web00').catch(() => undefined);
    c.close();
    await browser.close();
    daemon?.kill('SIGTERM');
    await sleep(500);
    await rm(work, { recursive: true, force: true });
  }
}
