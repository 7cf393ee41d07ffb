/**
 * `virtkit probe [--channel PATTERN] [--json]`: the manager's own probes, live: every API call
 * (caller uid/pid, method, domain, latency, outcome), store operation, QMP command and QEMU
 * event, as DTrace on xenstored showed every request. `virtkit snoop` stays the store's view.
 */
import type { Command } from 'commander';
import type { ProbeRecord } from '../../api/index.js';
import { escapeForTerminal } from '../../util/terminal-text.js';
import { withClient, withConnect, type ConnectOpts } from './connect.js';

export function formatProbe(r: ProbeRecord): string {
  const who = r.uid !== undefined || r.pid !== undefined ? ` uid ${r.uid ?? '-'} pid ${r.pid ?? '-'}` : '';
  const latency = r.latencyMs !== undefined ? ` ${r.latencyMs.toFixed(3)}ms` : '';
  return `${r.time} ${r.channel.padEnd(10)} ${r.name}${r.domain !== undefined ? ` ${r.domain}` : ''}${who}${latency}${r.outcome !== undefined ? ` ${r.outcome}` : ''}${r.detail ? ` ${r.detail}` : ''}`;
}

export function register(program: Command): void {
  withConnect(program.command('probe')
    .description('the manager\'s probes live: API calls, store operations, QMP commands, QEMU events')
    .option('--channel <pattern...>', 'api, store, qmp, qemu-event, or a glob (default: all)')
    .option('--json', 'one JSON object per line'))
    .action(async (o: ConnectOpts & { channel?: string[]; json?: boolean }) => {
      const ac = new AbortController();
      process.once('SIGINT', () => ac.abort());
      await withClient(o, async (c) => {
        const records = c.probe({
          signal: ac.signal, ...(o.channel ? { channels: o.channel } : {}),
          onStarted: (channels) => process.stderr.write(`probing ${channels.join(', ')}\n`),
        });
        for await (const r of records) {
          process.stdout.write(o.json ? `${JSON.stringify(r)}\n` : `${escapeForTerminal(formatProbe(r))}\n`);
        }
      });
    });
}
