/**
 * `virtkit ui [--print]`: opens the web manager (docs/web.md). Asks the daemon where its state
 * dir is, reads the web listener's address (STATE_DIR/http.json) and token (STATE_DIR/http-token,
 * 0600: only the daemon's own user and root can) and opens `URL/#token=TOKEN` in a browser with
 * xdg-open, or prints it. The token rides in the fragment, which no browser sends to a server.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import type { Command } from 'commander';
import { VirtkitError } from '../../util/errors.js';
import { withClient, withConnect, type ConnectOpts } from './connect.js';

const HowToStart = 'start the daemon with --http 127.0.0.1:8006 (virtkit daemon --http 127.0.0.1:8006, or virtkitd --http ...)';

/** The web manager's URL with the token, from the daemon's state dir. */
export async function webManagerUrl(stateDir: string): Promise<string> {
  let rec: { url?: unknown; pid?: unknown };
  try {
    rec = JSON.parse(await readFile(join(stateDir, 'http.json'), 'utf8')) as { url?: unknown; pid?: unknown };
  } catch {
    throw new VirtkitError('operation.unsupported', `the daemon serves no web manager: ${HowToStart}`, { stateDir });
  }
  if (typeof rec.url !== 'string' || !/^http:\/\/[^/]+$/.test(rec.url)) {
    throw new VirtkitError('operation.unsupported', `${join(stateDir, 'http.json')} names no listener: ${HowToStart}`, { stateDir });
  }
  let token: string;
  try {
    token = (await readFile(join(stateDir, 'http-token'), 'utf8')).trim();
  } catch (err) {
    throw new VirtkitError('access.denied', `cannot read the web token ${join(stateDir, 'http-token')}: ${(err as Error).message} (it is the daemon owner's)`,
      { stateDir });
  }
  return `${rec.url}/#token=${encodeURIComponent(token)}`;
}

function onPath(program: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => dir !== '' && existsSync(join(dir, program)));
}

/** How long to wait for the opener's exit status before taking a still-running opener as success. */
const OpenerPatienceMs = 15_000;

/**
 * Opens `url` with `opener` (xdg-open) and waits for its exit status: xdg-open exits 3 when it
 * finds no browser (no DISPLAY), and that must not read as "opened". An opener still running
 * after OpenerPatienceMs is a browser in the foreground: it is left running, detached.
 */
export function openInBrowser(url: string, opener = 'xdg-open', args: string[] = []): Promise<{ ok: true } | { ok: false; reason: string }> {
  return new Promise((resolve) => {
    // Detached and silent: the browser outlives this command, and its chatter is not ours.
    const child = spawn(opener, [...args, url], { detached: true, stdio: 'ignore' });
    const patience = setTimeout(() => { child.unref(); resolve({ ok: true }); }, OpenerPatienceMs);
    patience.unref();
    child.on('error', (err) => { clearTimeout(patience); resolve({ ok: false, reason: `${opener}: ${err.message}` }); });
    child.on('exit', (code, signal) => {
      clearTimeout(patience);
      if (code === 0) resolve({ ok: true });
      else resolve({ ok: false, reason: signal !== null ? `${opener} was killed by ${signal}` : `${opener} exited with status ${code ?? '?'}${code === 3 ? ': no browser found (no DISPLAY?)' : ''}` });
    });
  });
}

export function register(program: Command): void {
  withConnect(program.command('ui')
    .description('open the web manager in a browser (the daemon needs --http); --print prints its URL with the token')
    .option('--print', 'print the URL instead of opening it'))
    .action(async (o: ConnectOpts & { print?: boolean }) => {
      const info = await withClient(o, (c) => c.daemonInfo());
      const url = await webManagerUrl(info.stateDir);
      if (o.print || !onPath('xdg-open')) {
        if (!o.print) process.stderr.write('virtkit ui: no xdg-open here; open this URL in a browser:\n');
        process.stdout.write(`${url}\n`);
        return;
      }
      const opened = await openInBrowser(url);
      if (opened.ok) {
        process.stderr.write('virtkit ui: opened the web manager in a browser\n');
        return;
      }
      // Like xdg-open's own fallbacks: the URL is still the answer, so this is not a failure.
      process.stderr.write(`virtkit ui: could not open a browser (${opened.reason}); open this URL in a browser:\n`);
      process.stdout.write(`${url}\n`);
    });
}
