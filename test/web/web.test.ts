/**
 * The web manager end to end, in Debian's chromium driven by playwright-core: a real daemon
 * with `--http` (the built CLI), real QEMU guests from the guest kit. One browser page goes
 * through the story in order: refused without the token, opened with `virtkit ui --print`,
 * a guest created through the wizard and started, its xterm console ready and taking a
 * command, a schema error shown at its field, a shutdown from the page pushed back to it, a
 * `graphics: vnc` guest on a non-blank noVNC canvas, and a daemon restart survived. Each
 * page's screenshot is written to docs/img/ for docs/web.md.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DaemonHarness, waitFor } from '../integration/daemon-harness.js';
import { guestPaths, testGuest } from '../helpers/guests.js';

const Chromium = '/usr/bin/chromium';
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const Screenshots = join(root, 'docs', 'img');

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolvePort(port));
    });
  });
}

describe.skipIf(!existsSync(Chromium))('the web manager in chromium', () => {
  let daemon: DaemonHarness;
  let browser: Browser;
  let page: Page;
  let port: number;
  let url: string;
  let poolDir: string;
  const guest = guestPaths(testGuest());
  const httpArgs = (): string[] => ['--http', `127.0.0.1:${port}`];

  const shot = async (name: string): Promise<void> => {
    await page.screenshot({ path: join(Screenshots, `web-${name}.png`) });
  };
  /** The text xterm.js shows (its DOM renderer's rows). */
  const terminalText = async (): Promise<string> => page.locator('.xterm-rows').innerText();

  beforeAll(async () => {
    await mkdir(Screenshots, { recursive: true });
    daemon = await DaemonHarness.create();
    port = await freePort();
    await daemon.start({}, httpArgs());
    poolDir = await mkdtemp('/tmp/vkwebpool-');
    browser = await chromium.launch({ executablePath: Chromium, args: ['--no-sandbox'] });
    page = await browser.newPage({ viewport: { width: 1280, height: 860 }, colorScheme: 'light' });
  });

  afterAll(async () => {
    await browser?.close();
    await daemon?.cleanup();
    if (poolDir) await rm(poolDir, { recursive: true, force: true });
  });

  it('refuses a request without the token, and virtkit ui --print gives the URL with it', async () => {
    const bare = await fetch(`http://127.0.0.1:${port}/domains`);
    expect(bare.status).toBe(401);
    expect(((await bare.json()) as { error: { code: string } }).error.code).toBe('access.unauthenticated');
    const ui = await daemon.cli(['ui', '--print']);
    expect(ui.code).toBe(0);
    url = ui.stdout.trim();
    expect(url).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${port}/#token=[A-Za-z0-9_-]{43}$`));
  });

  it('takes a token pasted into the same tab (a hash-only navigation)', async () => {
    await page.goto(url.slice(0, url.indexOf('#')));
    await page.getByText('This page needs the daemon\'s token').waitFor();
    await page.evaluate((hash) => { location.hash = hash; }, url.slice(url.indexOf('#')));
    await page.getByRole('heading', { name: 'Host' }).waitFor();
    expect(page.url()).not.toContain('token=');
    await page.evaluate(() => sessionStorage.clear());
  });

  it('opens with the token, forgets it from the address bar, and shows the host', async () => {
    await page.goto(url);
    await page.getByRole('heading', { name: 'Host' }).waitFor();
    expect(page.url()).not.toContain('token=');
    expect(await page.title()).toBe('Host · virtkit');
    // The page's own requests carry the token; one made without it from the page is refused too.
    const status = await page.evaluate(async () => (await fetch('/domains')).status);
    expect(status).toBe(401);
    // host.info: the QEMU version once the daemon has probed it.
    await waitFor('the QEMU version', async () => /^\d+\.\d+/.test(await page.getByTestId('qemu-version').innerText()), 60_000, 100);
    await shot('overview');
  });

  it('creates a guest through the wizard and starts it; the xterm console is ready and runs a command', async () => {
    const def = YAML.parse(await readFile(guest.definitionPath, 'utf8')) as { boot: { cmdline: string } };
    await page.getByRole('link', { name: 'New guest' }).first().click();
    // Next checks its step: a bad name is shown at its field, and the wizard stays on that step.
    await page.getByLabel('Name').fill('-bad');
    await page.getByRole('button', { name: 'Next' }).click();
    const nameError = page.locator('.field[data-path="name"] .field-error');
    await nameError.waitFor();
    expect(await nameError.innerText()).toMatch(/^name: must be 1-64 letters/);
    await shot('wizard-error');
    await page.getByLabel('Name').fill('webguest');
    // A start that fails (no such kernel) undefines what it defined and shows at the kernel's
    // field; the corrected form then defines and starts (no domain.exists).
    await page.getByLabel('Kernel (host path)').fill('/nonexistent/vmlinuz');
    await page.getByLabel('Kernel command line').fill(def.boot.cmdline);
    for (let i = 0; i < 4; i++) await page.getByRole('button', { name: 'Next' }).click();
    await page.getByRole('button', { name: 'Create and start' }).click();
    const kernelError = page.locator('.field[data-path="boot.kernel"] .field-error');
    await kernelError.waitFor();
    expect(await kernelError.innerText()).toContain('/nonexistent/vmlinuz');
    expect((await daemon.cli(['list', '--all'])).stdout).not.toContain('webguest');
    await page.getByLabel('Kernel (host path)').fill(guest.kernelPath);
    await page.getByLabel('Initrd (host path)').fill(guest.initrdPath);
    await page.getByLabel('Kernel command line').fill(def.boot.cmdline);
    await page.getByRole('button', { name: 'Next' }).click();
    await page.getByLabel('Memory (MiB)').fill('128');
    await page.getByRole('button', { name: 'Next' }).click();
    await page.getByRole('button', { name: 'Next' }).click();
    await page.getByRole('button', { name: 'Add a NIC' }).click();
    await page.getByRole('button', { name: 'Next' }).click();
    await page.getByTestId('review').waitFor();
    await shot('wizard');
    await page.getByRole('button', { name: 'Create and start' }).click();
    await page.waitForURL(/#\/guests\/webguest\/console$/);
    await waitFor('virtkit-guest: ready in the xterm console', async () => (await terminalText()).includes('virtkit-guest: ready'), 90_000, 250);
    await page.locator('.xterm').click();
    await page.keyboard.type('echo web-$((6*7))\n');
    await waitFor('the command output in xterm', async () => (await terminalText()).includes('web-42'), 30_000, 100);
    await shot('console');
  });

  it('shows a definition error from the schema at its line, and keeps the saved definition', async () => {
    await page.getByRole('link', { name: 'Definition' }).click();
    const editor = page.getByTestId('definition-editor');
    await editor.waitFor();
    await waitFor('the definition text', async () => (await editor.inputValue()).includes('vcpus:'));
    const text = await editor.inputValue();
    await editor.fill(text.replace(/^vcpus: \d+$/m, 'vcpus: 0'));
    await page.getByRole('button', { name: 'Save' }).click();
    const error = page.getByTestId('definition-error');
    await error.waitFor();
    const lineNo = text.split('\n').findIndex((l) => l.startsWith('vcpus:')) + 1;
    expect(await error.innerText()).toMatch(new RegExp(`^line ${lineNo}: definition.invalid vcpus: `));
    expect(await page.locator('.gutter li.bad').innerText()).toBe(String(lineNo));
    await shot('definition');
    await page.getByRole('button', { name: 'Revert' }).click();
  });

  it('shuts the guest down from the page and the new state is pushed to it', async () => {
    await page.getByRole('link', { name: 'Overview' }).click();
    await page.getByRole('button', { name: 'Shut down' }).click();
    await waitFor('shutoff on the page', async () => (await page.getByTestId('guest-state').innerText()) === 'shutoff', 60_000, 100);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Guests' }).click();
    expect(await page.locator('tr[data-name="webguest"] [data-testid="state"]').innerText()).toBe('shutoff');
  });

  it('shows a graphics: vnc guest on a non-blank noVNC canvas', async () => {
    const c = daemon.client();
    const text = (await readFile(guest.definitionPath, 'utf8')).replace(/^name: .*$/m, 'name: vncguest').replace(/^graphics: none$/m, 'graphics: vnc');
    await c.define(text, { baseDir: guest.dir });
    await c.start('vncguest');
    await page.goto(`http://127.0.0.1:${port}/#/guests/vncguest/display`);
    await waitFor('noVNC connected', async () => (await page.getByTestId('vnc-status').innerText()).includes('connected'), 30_000, 100);
    const lit = async (): Promise<number> => page.evaluate(() => {
      const canvas = document.querySelector<HTMLCanvasElement>('[data-testid="vnc"] canvas');
      if (!canvas || canvas.width === 0) return 0;
      const data = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
      let n = 0;
      for (let i = 0; i < data.length; i += 4) if (data[i]! + data[i + 1]! + data[i + 2]! > 60) n++;
      return n;
    });
    await waitFor('a non-blank VNC canvas', async () => (await lit()) > 100, 60_000, 250);
    await shot('vnc');
  });

  it('survives a daemon restart: the console reattaches, the list is live again and follows new changes', async () => {
    await page.goto(`http://127.0.0.1:${port}/#/guests/vncguest/console`);
    const consoleStatus = page.locator('.console-status');
    await waitFor('the console attached', async () => (await consoleStatus.getAttribute('data-status')) === 'connected', 30_000, 100);
    await daemon.stop();
    await waitFor('the console seeing the daemon go', async () => (await consoleStatus.getAttribute('data-status')) !== 'connected', 30_000, 50);
    await daemon.start({}, httpArgs());
    await waitFor('the console attached again', async () => (await consoleStatus.getAttribute('data-status')) === 'connected', 30_000, 100);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Guests' }).click();
    const state = page.locator('tr[data-name="vncguest"] [data-testid="state"]');
    await waitFor('vncguest running in the list', async () => (await state.innerText()) === 'running', 30_000, 100);
    // A change made after the restart reaches the page through the resumed event stream.
    await daemon.client().destroy('vncguest');
    await waitFor('the destroy pushed after the restart', async () => (await state.innerText()) === 'shutoff', 30_000, 100);
    await shot('guests');
  });

  it('shows storage, events and snoop pages', async () => {
    const c = daemon.client();
    await c.poolDefine({ name: 'images', type: 'dir', path: poolDir } as never);
    await c.volumeCreate('images', { name: 'disk0.qcow2', capacity: 64 * 2 ** 20, format: 'qcow2' });
    await page.getByRole('link', { name: 'Storage' }).click();
    await page.getByRole('cell', { name: 'disk0.qcow2' }).waitFor();
    await shot('storage');
    await page.getByRole('link', { name: 'Events' }).click();
    await page.getByTestId('events').getByRole('cell', { name: 'stopped' }).first().waitFor();
    await shot('events');
    await page.getByRole('link', { name: 'Snoop' }).click();
    await page.getByRole('heading', { name: 'Store snoop' }).waitFor();
    // The store operations of an autostart change, as they happen. The page
    // subscribes after its heading renders, so a change made in between is
    // not shown ("since this page opened"): toggle until one arrives.
    const row = page.getByTestId('snoop').getByText('/domain/webguest/autostart').first();
    let on = false;
    await waitFor('an autostart change in the snoop table', async () => {
      on = !on;
      await c.setAutostart('webguest', on);
      return row.waitFor({ timeout: 2_000 }).then(() => true, () => false);
    }, 60_000, 0);
    await shot('snoop');
  });
});
