/**
 * One client process of the daemon bench's concurrent measurement: opens N connections to
 * the daemon and calls one method on each, back to back, between two wall-clock instants
 * given by the parent; prints how many calls completed. Several of these run at once, so
 * the aggregate is not capped by what one client process can send on one core.
 *
 *   node daemon-load-worker.js SOCKET CONNECTIONS list|info START_MS END_MS [rpc|http]
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from '../src/client/index.js';

const [socket, connections, method, startMs, endMs, transport] = process.argv.slice(2);
// Each client its own connection: 50 clients are 50 connections, as 50 libvirt clients would be.
const clients = Array.from({ length: Number(connections) }, () => connect(socket!, { maxSockets: 1, transport: transport === 'http' ? 'http' : 'rpc' }));
const call = method === 'list' ? (c: (typeof clients)[number]) => c.list({ all: true }) : (c: (typeof clients)[number]) => c.info('bench');
// Warm-up until the common start, so connections are open and code is compiled.
await Promise.all(clients.map(async (c) => { while (Date.now() < Number(startMs)) await call(c); }));
const waitStart = Number(startMs) - Date.now();
if (waitStart > 0) await sleep(waitStart);
let calls = 0;
await Promise.all(clients.map(async (c) => {
  while (Date.now() < Number(endMs)) {
    await call(c);
    calls++;
  }
}));
for (const c of clients) c.close();
process.stdout.write(`${JSON.stringify({ calls })}\n`);
