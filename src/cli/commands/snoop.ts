/**
 * `virtkit snoop`: every store operation as it happens, one line each, in the spirit of
 * xenstore-snoop: client pid, transaction id or '-', operation, path, value, result.
 */
import type { Command } from 'commander';
import type { SnoopRecord } from '../../api/index.js';
import { withClient, withConnect, type ConnectOpts } from './connect.js';

export function formatSnoop(r: SnoopRecord): string {
  const value = r.value === null ? '' : ` ${JSON.stringify(r.value.length > 80 ? `${r.value.slice(0, 80)}...` : r.value)}`;
  return `${r.time} pid ${r.pid ?? '-'} ${r.client} tx ${r.tx} ${r.op} ${r.path}${value} ${r.result}`;
}

export function register(program: Command): void {
  withConnect(program.command('snoop')
    .description('print every store operation live: pid, transaction, op, path, value, result')
    .option('--json', 'one JSON object per line'))
    .action(async (o: ConnectOpts & { json?: boolean }) => {
      const ac = new AbortController();
      process.once('SIGINT', () => ac.abort());
      await withClient(o, async (c) => {
        for await (const r of c.snoop({ signal: ac.signal })) {
          process.stdout.write(o.json ? `${JSON.stringify(r)}\n` : `${formatSnoop(r)}\n`);
        }
      });
    });
}
