/** `virtkit ui`: the URL from the state dir's listener record and token, or how to start a listener. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { isVirtkitError } from '../../util/errors.js';
import { openInBrowser, webManagerUrl } from './ui.js';

let dir: string;
beforeEach(async () => { dir = await mkdtemp('/tmp/vkui-'); });
afterEach(async () => { await rm(dir, { recursive: true, force: true }); });

it('says how to start a listener when the daemon has none', async () => {
  await expect(webManagerUrl(dir)).rejects.toSatisfy((e: unknown) =>
    isVirtkitError(e, 'operation.unsupported') && e.message.includes('--http 127.0.0.1:8006'));
});

it('puts the token in the fragment of the listener URL', async () => {
  await writeFile(join(dir, 'http.json'), JSON.stringify({ url: 'http://127.0.0.1:8006', pid: 1 }));
  await writeFile(join(dir, 'http-token'), 'abc_DEF-123\n');
  expect(await webManagerUrl(dir)).toBe('http://127.0.0.1:8006/#token=abc_DEF-123');
});

it('refuses a record that names no listener', async () => {
  await writeFile(join(dir, 'http.json'), JSON.stringify({ url: 'javascript:alert(1)' }));
  await expect(webManagerUrl(dir)).rejects.toSatisfy((e: unknown) => isVirtkitError(e, 'operation.unsupported'));
});

it('reports an opener that exits non-zero (xdg-open without a DISPLAY exits 3) as not opened', async () => {
  const r = await openInBrowser('http://127.0.0.1:1/#token=x', 'sh', ['-c', 'exit 3', 'sh']);
  expect(r.ok).toBe(false);
  expect(!r.ok && r.reason).toContain('status 3');
});

it('reports an opener that exits 0 as opened, and a missing opener as not opened', async () => {
  expect((await openInBrowser('http://127.0.0.1:1/', 'true')).ok).toBe(true);
  expect((await openInBrowser('http://127.0.0.1:1/', '/nonexistent/xdg-open')).ok).toBe(false);
});
