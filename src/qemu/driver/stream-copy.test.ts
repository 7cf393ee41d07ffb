import { randomBytes } from 'node:crypto';
import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyWithCat, filePosition, seekTo } from './stream-copy.js';

let dir: string;
beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'virtkit-stream-copy-')); });
afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

/** A connected pair of unix sockets: `server` paused on connect, as the driver's is. */
async function socketPair(name: string): Promise<{ server: Socket; client: Socket }> {
  const path = join(dir, name);
  const srv = createServer({ pauseOnConnect: true });
  const accepted = new Promise<Socket>((resolve) => srv.once('connection', resolve));
  await new Promise<void>((resolve) => srv.listen(path, resolve));
  const client = connect(path);
  await new Promise<void>((resolve) => client.once('connect', resolve));
  const server = await accepted;
  srv.close();
  return { server, client };
}

function readAll(sock: Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  return new Promise((resolve, reject) => {
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.once('end', () => resolve(Buffer.concat(chunks)));
    sock.once('error', reject);
  });
}

describe('stream copy by cat', () => {
  it('writes what arrives on a socket into a file after its header', async () => {
    const path = join(dir, 'save');
    const header = Buffer.alloc(333, 0x48);
    const payload = randomBytes(3 * 1024 * 1024 + 17);
    await writeFile(path, header);
    const fh = await open(path, 'r+');
    const { server, client } = await socketPair('save.sock');
    await seekTo(fh, header.length);
    const copy = copyWithCat(server, fh.fd, 'test save');
    client.end(payload);
    await copy.done;
    server.destroy();
    await fh.close();
    const out = await readFile(path);
    expect(out.subarray(0, header.length).equals(header)).toBe(true);
    expect(out.subarray(header.length).equals(payload)).toBe(true);
  });

  it('sends a file from after its header into a socket', async () => {
    const path = join(dir, 'restore');
    const header = Buffer.alloc(1500, 0x20);
    const payload = randomBytes(2 * 1024 * 1024 + 5);
    await writeFile(path, Buffer.concat([header, payload]));
    const fh = await open(path, 'r');
    const { server, client } = await socketPair('restore.sock');
    await seekTo(fh, header.length);
    const received = readAll(client);
    client.resume();
    const copy = copyWithCat(fh.fd, server, 'test restore');
    await copy.done;
    server.end();
    await fh.close();
    expect((await received).equals(payload)).toBe(true);
  });

  it('reads a descriptor\'s file position from /proc, as the restore\'s progress does', async () => {
    const path = join(dir, 'position');
    await writeFile(path, Buffer.alloc(5000));
    const fh = await open(path, 'r');
    try {
      await seekTo(fh, 4321);
      expect(await filePosition(process.pid, fh.fd)).toBe(4321);
      expect(await filePosition(process.pid, 99_999)).toBeUndefined();
    } finally {
      await fh.close();
    }
  });

  it('refuses to seek past the end of a short file', async () => {
    const path = join(dir, 'short');
    await writeFile(path, Buffer.alloc(10));
    const fh = await open(path, 'r');
    try {
      await expect(seekTo(fh, 100)).rejects.toMatchObject({ code: 'save.truncated' });
    } finally {
      await fh.close();
    }
  });

  it('stop() ends a copy that would otherwise wait forever, and done rejects', async () => {
    const { server, client } = await socketPair('stop.sock');
    const path = join(dir, 'stopped');
    await writeFile(path, '');
    const fh = await open(path, 'r+');
    const copy = copyWithCat(server, fh.fd, 'test stop');
    copy.stop();
    await expect(copy.done).rejects.toMatchObject({ code: 'image.io' });
    client.destroy();
    server.destroy();
    await fh.close();
  });
});
