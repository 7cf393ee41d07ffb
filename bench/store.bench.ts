/**
 * The state store against the file-per-domain approach (libvirt keeps each domain's status
 * as an XML file rewritten by write-temp, fsync, rename), measured on the same disk in the
 * same run. Figures are operations per second; the ratio is virtkit / files.
 */
import { closeSync, fsyncSync, mkdtempSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../src/store/index.js';
import { ratioLine } from './stats.js';

const Domains = 100;

function perSecond(count: number, fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return count / (Number(process.hrtime.bigint() - t0) / 1e9);
}

async function perSecondAsync(count: number, fn: () => Promise<void>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return count / (Number(process.hrtime.bigint() - t0) / 1e9);
}

/** What libvirt's virFileRewrite does for a status file. */
function rewriteFile(path: string, content: string, durable: boolean): void {
  const tmp = `${path}.new`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, content);
    if (durable) fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

function status(i: number, state: string): string {
  return JSON.stringify({ name: `d${i}`, state, pid: 1000 + i, memory: 268435456, vcpus: 1 });
}

export async function run(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'virtkit-bench-store-'));
  try {
    for (const sync of ['full', 'normal'] as const) {
      const durable = sync === 'full';
      const stateDir = join(dir, `store-${sync}`);
      const store = openStore(stateDir, { synchronous: sync });
      const filesDir = mkdtempSync(join(dir, 'files-'));
      for (let i = 0; i < Domains; i++) {
        await store.write(`/domain/d${i}/status`, status(i, 'shutoff'));
        rewriteFile(join(filesDir, `d${i}.json`), status(i, 'shutoff'), false);
      }
      const writes = durable ? 200 : 2000;
      const ours = await perSecondAsync(writes, async () => {
        for (let n = 0; n < writes; n++) await store.write(`/domain/d${n % Domains}/status`, status(n, 'running'));
      });
      const theirs = perSecond(writes, () => {
        for (let n = 0; n < writes; n++) rewriteFile(join(filesDir, `d${n % Domains}.json`), status(n, 'running'), durable);
      });
      console.log(ratioLine(`state update (synchronous=${sync}${durable ? ', fsync per update' : ', no fsync'})`,
        ours, theirs, 'updates/s', 'file rewrite'));

      const txs = durable ? 200 : 2000;
      const oursTx = await perSecondAsync(txs, async () => {
        for (let n = 0; n < txs; n++) {
          const d = `/domain/d${n % Domains}`;
          await store.transaction(async (tx) => {
            await tx.read(`${d}/status`);
            await tx.write(`${d}/status`, status(n, 'paused'));
            await tx.write('/event', JSON.stringify({ type: 'suspended', domain: d }));
          });
        }
      });
      const theirsTx = perSecond(txs, () => {
        for (let n = 0; n < txs; n++) {
          const f = join(filesDir, `d${n % Domains}.json`);
          readFileSync(f, 'utf8');
          rewriteFile(f, status(n, 'paused'), durable);
        }
      });
      console.log(ratioLine(`read-modify-write transaction + event (synchronous=${sync})`, oursTx, theirsTx, 'tx/s', 'file read+rewrite'));

      // The same with the event followed, as while a client follows `/events`: every commit
      // then also goes through the store's change feed to the watch.
      let heard = 0;
      const unwatch = store.watch('/event', () => { heard++; });
      const oursFollowed = await perSecondAsync(txs, async () => {
        for (let n = 0; n < txs; n++) {
          const d = `/domain/d${n % Domains}`;
          await store.transaction(async (tx) => {
            await tx.read(`${d}/status`);
            await tx.write(`${d}/status`, status(n, 'paused'));
            await tx.write('/event', JSON.stringify({ type: 'suspended', domain: d }));
          });
        }
      });
      unwatch();
      if (heard !== txs) throw new Error(`the event watch heard ${heard} of ${txs} events`);
      console.log(ratioLine(`... with the event followed (synchronous=${sync})`, oursFollowed, theirsTx, 'tx/s', 'file read+rewrite'));
      if (durable) {
        // 50 writers at once: their commits share one transaction and one fsync (group commit),
        // each answered once that fsync is done; against the same updates one after the other.
        const concurrent = await perSecondAsync(writes, async () => {
          for (let n = 0; n < writes; n += 50) {
            await Promise.all(Array.from({ length: 50 }, (_, k) =>
              store.write(`/domain/d${(n + k) % Domains}/status`, status(n + k, 'running'))));
          }
        });
        console.log(ratioLine('state update, 50 writers at once (synchronous=full, grouped commits)', concurrent, ours, 'updates/s', 'one after the other'));
      }
      await store.close();
    }

    // Reads: a listing plus every domain's status, as `virtkit list` needs.
    const store = openStore(join(dir, 'store-full'));
    const filesDir = mkdtempSync(join(dir, 'files-read-'));
    for (let i = 0; i < Domains; i++) rewriteFile(join(filesDir, `d${i}.json`), status(i, 'running'), false);
    const rounds = 200;
    const oursList = await perSecondAsync(rounds, async () => {
      for (let r = 0; r < rounds; r++) {
        for (const name of (await store.list('/domain')) ?? []) await store.read(`/domain/${name}/status`);
      }
    });
    const theirsList = perSecond(rounds, () => {
      for (let r = 0; r < rounds; r++) {
        for (const name of readdirSync(filesDir)) readFileSync(join(filesDir, name), 'utf8');
      }
    });
    console.log(ratioLine(`list of ${Domains} domains with their status`, oursList, theirsList, 'lists/s', 'readdir+read files'));
    await store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
