/**
 * `virtkit netdump NAME [--iface ID] FILE [--duration S] [--count N]`: the traffic of a running
 * guest's NIC, captured by a QEMU filter-dump, written to FILE as pcap (`tcpdump -r FILE`).
 * Ends after S seconds, N packets, or Ctrl-C; the filter is removed then (docs/observability.md).
 */
import type { Command } from 'commander';
import { VirtkitError } from '../../util/errors.js';
import { openOutput, parseDuration } from './trace.js';
import { withClient, withConnect, type ConnectOpts } from './connect.js';

interface NetdumpOpts extends ConnectOpts {
  iface?: string;
  duration?: string;
  count?: string;
}

export function register(program: Command): void {
  withConnect(program.command('netdump')
    .description('capture a running domain\'s network traffic to a pcap file')
    .argument('<domain>', 'domain name')
    .argument('<file>', 'pcap file to write')
    .option('-i, --iface <id>', 'the NIC\'s id (default: the first NIC)')
    .option('--duration <seconds>', 'stop after this many seconds')
    .option('--count <packets>', 'stop after this many packets'))
    .action(async (domain: string, file: string, o: NetdumpOpts) => {
      const duration = parseDuration(o.duration);
      if (o.count !== undefined && !/^[1-9]\d{0,8}$/.test(o.count)) {
        throw new VirtkitError('argument.invalid', `--count ${o.count}: expected a whole number of packets above 0`, { option: 'count' });
      }
      const out = await openOutput(file, '');
      const ac = new AbortController();
      const onSigint = (): void => ac.abort();
      process.once('SIGINT', onSigint);
      let bytes = 0;
      try {
        await withClient(o, async (c) => {
          const res = await c.netdump(domain, {
            signal: ac.signal,
            ...(o.iface !== undefined ? { iface: o.iface } : {}),
            ...(duration !== undefined ? { duration } : {}),
            ...(o.count !== undefined ? { count: Number(o.count) } : {}),
          });
          process.stderr.write(`capturing ${domain}${o.iface ? ` ${o.iface}` : ''} to ${file}\n`);
          try {
            for await (const chunk of res as AsyncIterable<Buffer>) {
              bytes += chunk.length;
              await out.write(chunk);
            }
          } catch (err) {
            if (!ac.signal.aborted) throw err;
          }
        });
      } finally {
        process.off('SIGINT', onSigint);
        await out.close();
      }
      process.stderr.write(`${bytes} bytes written to ${file}\n`);
    });
}
