/**
 * Call rates against a daemon, shared by the daemon and scale benches: calls per second of one
 * or many clients in this process, the aggregate of many connections spread over client
 * processes (daemon-load-worker.ts), and the floors of the two protocols of the daemon's
 * socket measured with the same client: a bare Node HTTP server, and a bare server speaking
 * the RPC channel's framing, each answering a constant.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LineSplitter, MaxRpcFrameChars, RpcProtocol } from '../src/api/wire/index.js';
import { connect, type ClientOptions, type VirtkitClient } from '../src/client/index.js';

/** Calls per second of `fn` run back to back on each of `clients` for `ms`. */
export async function rate(clients: VirtkitClient[], fn: (c: VirtkitClient) => Promise<unknown>, ms: number): Promise<number> {
  const deadline = Date.now() + ms;
  let calls = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(clients.map(async (c) => {
    while (Date.now() < deadline) {
      await fn(c);
      calls++;
    }
  }));
  return calls / (Number(process.hrtime.bigint() - t0) / 1e9);
}

/**
 * The median of `windows` rates of `ms` each, one after the other: on a machine shared with
 * other work the load moves within seconds, and one window can land on a burst of it.
 */
export async function medianRate(clients: VirtkitClient[], fn: (c: VirtkitClient) => Promise<unknown>, windows = 3, ms = 1000): Promise<number> {
  const rates: number[] = [];
  for (let i = 0; i < windows; i++) rates.push(await rate(clients, fn, ms));
  rates.sort((a, b) => a - b);
  return rates[Math.floor(rates.length / 2)]!;
}

/** CPU seconds (user + system) a process has used, from /proc (clock ticks of 10 ms). */
export function cpuSecondsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/**
 * CPU per call, in microseconds, of the daemon (`pid`) and of this client process, over
 * `calls` calls one after the other: unlike a rate, it does not move with the machine's load.
 */
export async function cpuPerCall(pid: number, c: VirtkitClient, fn: (c: VirtkitClient) => Promise<unknown>, calls = 10_000): Promise<{ daemonUs: number; clientUs: number }> {
  const daemon0 = cpuSecondsOf(pid);
  const client0 = process.cpuUsage();
  for (let i = 0; i < calls; i++) await fn(c);
  const client = process.cpuUsage(client0);
  return { daemonUs: (cpuSecondsOf(pid) - daemon0) * 1e6 / calls, clientUs: (client.user + client.system) / calls };
}

const ConstantInfo = JSON.stringify({ version: '0', pid: 1, stateDir: '/', runDir: '/', bootId: 'x', revision: 1, apiExtensions: [] });

/** The HTTP floor: Node's own HTTP server answering a constant, called by the client over HTTP. */
export async function bareHttpRate(socketPath: string): Promise<number> {
  const body = ConstantInfo;
  const server = createServer((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(body);
  });
  return floorRate(server, socketPath, { maxSockets: 1, transport: 'http' });
}

/**
 * The channel's floor: a bare Node server speaking the RPC channel's framing (the upgrade,
 * then one JSON line per call, answered by id with a constant), called by the same client.
 */
export async function bareChannelRate(socketPath: string): Promise<number> {
  const server = createNetServer((socket) => {
    let upgraded = false;
    const lines = new LineSplitter(MaxRpcFrameChars, (line) => {
      const { id } = JSON.parse(line) as { id: number };
      socket.write(`{"id":${id},"result":${ConstantInfo}}\n`);
    });
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      if (!upgraded) {
        const end = chunk.indexOf('\r\n\r\n');
        if (end === -1) return;
        upgraded = true;
        socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${RpcProtocol}\r\n\r\n`);
        chunk = chunk.slice(end + 4);
      }
      lines.push(chunk);
    });
    socket.on('error', () => socket.destroy());
  });
  return floorRate(server, socketPath);
}

/** A bare server's rate on one connection: listened on `socketPath`, warmed up, then measured and closed. */
async function floorRate(server: NetServer, socketPath: string, options?: ClientOptions): Promise<number> {
  await new Promise<void>((r) => server.listen(socketPath, r));
  const c = connect(socketPath, options);
  try {
    await rate([c], (x) => x.daemonInfo(), 300);
    return await medianRate([c], (x) => x.daemonInfo());
  } finally {
    c.close();
    server.close();
  }
}

export const ClientProcesses = Math.max(2, Math.min(4, availableParallelism()));
const worker = join(dirname(fileURLToPath(import.meta.url)), 'daemon-load-worker.js');

/** Aggregate calls/s of `connections` clients spread over ClientProcesses processes, for `ms` after a warm-up. */
export async function aggregateRate(socket: string, method: 'list' | 'info', connections: number, ms: number, transport: 'rpc' | 'http' = 'rpc'): Promise<number> {
  const start = Date.now() + 1000;
  const end = start + ms;
  const counts = await Promise.all(Array.from({ length: ClientProcesses }, (_, i) => {
    const share = Math.floor(connections / ClientProcesses) + (i < connections % ClientProcesses ? 1 : 0);
    return new Promise<number>((resolvePromise, reject) => {
      const p = spawn(process.execPath, [worker, socket, String(share), method, String(start), String(end), transport], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      p.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
      p.on('error', reject);
      p.on('close', (code) => {
        if (code === 0) resolvePromise((JSON.parse(out) as { calls: number }).calls);
        else reject(new Error(`client process exited with ${String(code)}`));
      });
    });
  }));
  return counts.reduce((a, b) => a + b, 0) / (ms / 1000);
}
