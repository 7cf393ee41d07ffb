/**
 * `virtkit event [--loop]`: domain events. Without --loop it waits for one event and exits.
 * `--since SEQ` replays what happened after SEQ first (events survive daemon restarts);
 * the stream reconnects by itself when the daemon restarts.
 */
import type { Command } from 'commander';
import type { DomainEvent } from '../../api/index.js';
import { VirtkitError } from '../../util/errors.js';
import { timeoutOption, wholeNumberOption } from '../options.js';
import { withClient, withConnect, type ConnectOpts } from './connect.js';

export function formatEvent(ev: DomainEvent): string {
  return `${ev.time} seq ${ev.seq}: domain '${ev.domain}' ${ev.type}${ev.reason ? ` (${ev.reason})` : ''}`;
}

export function register(program: Command): void {
  withConnect(program.command('event')
    .description('wait for domain events (one, or all with --loop)')
    .option('--loop', 'keep printing events until interrupted')
    .addOption(wholeNumberOption('--since <seq>', 'first replay the events after this sequence number (0: all kept)', { min: 0, max: Number.MAX_SAFE_INTEGER }))
    .option('--domain <name>', 'only events of this domain')
    .addOption(timeoutOption('give up when no event came in this time'))
    .option('--json', 'one JSON object per line'))
    .action(async (o: ConnectOpts & { loop?: boolean; since?: number; domain?: string; timeout?: number; json?: boolean }) => {
      const ac = new AbortController();
      const stop = (): void => ac.abort();
      process.once('SIGINT', stop);
      let timer: NodeJS.Timeout | undefined;
      let timedOut = false;
      if (o.timeout !== undefined) timer = setTimeout(() => { timedOut = true; ac.abort(); }, o.timeout * 1000);
      try {
        await withClient(o, async (c) => {
          for await (const ev of c.events({ ...(o.since !== undefined ? { since: o.since } : {}), signal: ac.signal })) {
            if (o.domain && ev.domain !== o.domain) continue;
            process.stdout.write(o.json ? `${JSON.stringify(ev)}\n` : `${formatEvent(ev)}\n`);
            if (!o.loop) return;
          }
        });
      } finally {
        clearTimeout(timer);
        process.off('SIGINT', stop);
      }
      if (timedOut && !o.loop) throw new VirtkitError('operation.timeout', `no event within ${o.timeout} s`);
    });
}
