import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { peerPid, pidFromSsOutput } from './peer-pid.js';

describe('pidFromSsOutput', () => {
  const output = [
    'u_str ESTAB 0 0 /tmp/s/virtkit.sock 5001 * 5002 users:(("node",pid=100,fd=21))',
    'u_str ESTAB 0 0 * 5002 * 5001 users:(("node",pid=200,fd=18))',
    'u_str ESTAB 0 0 * 6000 * 6001',
    'garbage',
    '',
  ].join('\n');

  it('finds the process whose socket has the given peer inode', () => {
    expect(pidFromSsOutput(output, '5001')).toBe(200);
    expect(pidFromSsOutput(output, '5002')).toBe(100);
  });

  it('answers null when the peer is unknown or has no process column', () => {
    expect(pidFromSsOutput(output, '9999')).toBeNull();
    expect(pidFromSsOutput(output, '6001')).toBeNull();
    expect(pidFromSsOutput('', '1')).toBeNull();
  });
});

describe('peerPid', () => {
  it('names the pid of the process on the other end of a unix socket', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vk-peer-'));
    const path = join(dir, 's.sock');
    const accepted = new Promise<Socket>((resolve) => {
      const server = createServer((s) => { resolve(s); server.close(); });
      server.listen(path);
    });
    const child = spawn(process.execPath, ['-e', `const s=require('net').connect(${JSON.stringify(path)});s.on('data',()=>process.exit(0));`], { stdio: 'ignore' });
    try {
      const socket = await accepted;
      expect(await peerPid(socket)).toBe(child.pid);
      socket.end('bye');
    } finally {
      await new Promise((r) => child.once('exit', r));
      await rm(dir, { recursive: true, force: true });
    }
  });
});
