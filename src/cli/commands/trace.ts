/**
 * `virtkit trace NAME --event PATTERN... [--duration S] [--json] [--output FILE]`: QEMU trace
 * events of a running guest, live, one line per record; `virtkit trace NAME --list [PATTERN]`
 * lists the events and their state. The daemon switches the events on for the trace and off
 * when it ends (Ctrl-C, --duration, the guest stops): docs/observability.md.
 */
import { open, type FileHandle } from 'node:fs/promises';
import type { Command } from 'commander';
import type { TraceRecord } from '../../api/index.js';
import { VirtkitError } from '../../util/errors.js';
import { escapeForTerminal } from '../../util/terminal-text.js';
import { printJson, printTable, withClient, withConnect, type ConnectOpts } from './connect.js';

interface TraceOpts extends ConnectOpts {
  event?: string[];
  duration?: string;
  json?: boolean;
  output?: string;
  list?: boolean;
}

/** One record as a line: time, event, vCPU when known, then name=value pairs. */
export function formatTraceRecord(r: TraceRecord): string {
  const args = Object.entries(r.args).map(([k, v]) => `${k}=${typeof v === 'string' && /\s/.test(v) ? JSON.stringify(v) : String(v)}`).join(' ');
  return `${r.time} ${r.event}${r.vcpu !== undefined ? ` vcpu=${r.vcpu}` : ''}${args ? ` ${args}` : ''}`;
}

/** The output file, created before the trace starts: a trace never starts only to fail writing. */
/** Opens the file a command writes; `named` is how the command line named it (an option, or none for an argument). */
export async function openOutput(path: string, named = '--output '): Promise<FileHandle> {
  try {
    return await open(path, 'w', 0o644);
  } catch (err) {
    throw new VirtkitError('output.unwritable', `${named}${path}: ${(err as NodeJS.ErrnoException).code ?? 'cannot be written'}`, { path, errno: (err as NodeJS.ErrnoException).code });
  }
}

export function parseDuration(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+(\.\d+)?$/.test(text) || !(Number(text) > 0) || Number(text) > 86_400) {
    throw new VirtkitError('argument.invalid', `--duration ${text}: expected a number of seconds above 0, at most 86400`, { option: 'duration' });
  }
  return Number(text);
}

export function register(program: Command): void {
  withConnect(program.command('trace')
    .description('QEMU trace events of a running domain, live (--list: the events and their state)')
    .argument('<domain>', 'domain name')
    .argument('[pattern]', 'with --list: event name or glob (default: all)')
    .option('-e, --event <pattern...>', 'event name or glob to trace (repeatable): virtio_blk_*')
    .option('--duration <seconds>', 'stop after this many seconds (default: until Ctrl-C or the guest stops)')
    .option('--json', 'one JSON record per line')
    .option('-o, --output <file>', 'write the records as JSON lines to FILE (analyzers read it)')
    .option('--list', 'list the trace events (matching PATTERN) and their state'))
    .action(async (domain: string, pattern: string | undefined, o: TraceOpts) => {
      await withClient(o, async (c) => {
        if (o.list) {
          const { events } = await c.traceEvents(domain, pattern);
          if (o.json) { printJson(events); return; }
          printTable(['Event', 'State', 'Tracers'], events.map((e) => [e.name, e.state, String(e.tracers)]));
          return;
        }
        if (pattern !== undefined) throw new VirtkitError('argument.invalid', `unexpected argument ${pattern}: name events with --event PATTERN (a pattern argument goes with --list)`);
        const events = o.event ?? [];
        if (events.length === 0) throw new VirtkitError('argument.invalid', 'trace needs --event PATTERN (or --list)', { option: 'event' });
        const duration = parseDuration(o.duration);
        const out = o.output !== undefined ? await openOutput(o.output) : undefined;
        const ac = new AbortController();
        const onSigint = (): void => ac.abort();
        process.once('SIGINT', onSigint);
        let count = 0;
        try {
          const records = c.trace(domain, {
            events, signal: ac.signal, ...(duration !== undefined ? { duration } : {}),
            onStarted: (names) => { if (!o.json) process.stderr.write(`tracing ${names.length} event(s) of ${domain}: ${names.join(' ')}\n`); },
          });
          for await (const r of records) {
            count++;
            if (out) await out.write(`${JSON.stringify(r)}\n`);
            else process.stdout.write(o.json ? `${JSON.stringify(r)}\n` : `${escapeForTerminal(formatTraceRecord(r))}\n`);
          }
        } finally {
          process.off('SIGINT', onSigint);
          await out?.close();
        }
        if (out && !o.json) process.stderr.write(`${count} record(s) written to ${o.output}\n`);
      });
    });
}
