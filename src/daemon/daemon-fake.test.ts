/**
 * The whole daemon in-process on the fake driver: startDaemon({ driver }) serving its socket,
 * the typed client over it (methods, the console over WebSocket, live vs saved), and a daemon
 * restart that adopts the fake guests of the same FakeHost.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { connect, type VirtkitClient } from '../client/index.js';
import { FakeDomainDriver, FakeHost } from '../qemu/driver/fake-driver.js';
import { startDaemon, type RunningDaemon } from './index.js';

let dir: string;
let host: FakeHost;
let daemon: RunningDaemon | undefined;
let client: VirtkitClient;

const start = async (): Promise<RunningDaemon> =>
  startDaemon({ stateDir: join(dir, 'state'), logFile: join(dir, 'daemon.log'), driver: new FakeDomainDriver({ host }) });

beforeEach(async () => {
  dir = await mkdtemp('/tmp/vkdf-');
  host = new FakeHost();
  process.env.VIRTKIT_BOOT_ID = 'fake-boot';
  daemon = await start();
  client = connect(daemon.dirs.socketPath);
});

afterEach(async () => {
  client.close();
  for (const g of host.liveGuests()) g.die();
  await daemon?.stop();
  delete process.env.VIRTKIT_BOOT_ID;
  await rm(dir, { recursive: true, force: true });
});

const definition = (name: string): string =>
  `name: ${name}\nmemory: 64MiB\nboot:\n  loader: direct\n  kernel: ${process.execPath}\non_crash: destroy\n`;

it('serves the API over its socket with guests on the fake driver, and adopts them after a restart', async () => {
  expect((await client.daemonInfo()).driver).toBe('fake');
  await client.define(definition('web'));
  const started = await client.start('web');
  expect(started).toMatchObject({ state: 'running', definitionDiffers: false });

  const text = (await client.getDefinition('web')).text;
  await client.updateDefinition('web', text.replace('on_crash: destroy', 'on_crash: preserve'));
  expect(await client.info('web')).toMatchObject({ definitionDiffers: true });
  const live = await client.call('domain.getDefinition', { params: { name: 'web' }, query: { format: 'yaml', live: true } });
  expect(live.text).toContain('on_crash: destroy');

  const con = await client.openConsole('web', 'write');
  let seen = '';
  con.on('data', (c: Buffer) => { seen += c.toString(); });
  con.write('echo through-the-socket\n');
  await waitFor(() => seen.includes('through-the-socket'));
  con.destroy();

  await daemon!.stop();
  daemon = await start();
  expect(await client.info('web')).toMatchObject({ state: 'running', pid: started.pid, definitionDiffers: true });
  host.guestNamed('web')!.panic();
  await waitFor(async () => (await client.state('web')).state === 'crashed');
  expect(await client.info('web')).not.toHaveProperty('definitionDiffers');
});

async function waitFor(fn: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}
