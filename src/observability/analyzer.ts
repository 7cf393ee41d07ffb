/**
 * Trace analyzers in the spirit of QEMU's simpletrace: a class with one method per event name,
 * called with the event's named arguments (and the whole record), `catchall` for events it
 * has no method for, `begin` and `end` around the run. `runAnalyzer` feeds it a live trace
 * (`client.trace(...)`), any iterable of records, or a file `virtkit trace --output` wrote
 * (JSON lines), the way awk feeds lines to its rules:
 *
 *   class Reads extends Analyzer {
 *     count = 0;
 *     virtio_blk_handle_read({ nsectors }: TraceArgs) { this.count += Number(nsectors); }
 *     end() { console.log(`${this.count} sectors read`); }
 *   }
 *   await runAnalyzer(new Reads(), 'trace.jsonl');
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { TraceRecord } from '../api/index.js';
import { VirtkitError } from '../util/errors.js';

export type TraceArgs = TraceRecord['args'];
export type { TraceRecord };

/** A live trace, records in memory, or the path of a recorded trace (JSON lines). */
export type TraceSource = AsyncIterable<TraceRecord> | Iterable<TraceRecord> | string;

export class Analyzer {
  /** Called once before the first record. */
  begin(): void | Promise<void> {}
  /** Every record of an event the analyzer has no method for. */
  catchall(_event: string, _args: TraceArgs, _record: TraceRecord): void | Promise<void> {}
  /** Called once after the last record; its result is what runAnalyzer's caller reads. */
  end(): void | Promise<void> {}
}

type EventMethod = (args: TraceArgs, record: TraceRecord) => void | Promise<void>;

/** The analyzer's own method for `event`, if it has one: defined below Analyzer, never Object's or the hooks. */
function methodFor(analyzer: Analyzer, event: string): EventMethod | undefined {
  if (event === 'begin' || event === 'end' || event === 'catchall' || event === 'constructor') return undefined;
  for (let proto: object | null = Object.getPrototypeOf(analyzer) as object | null; proto && proto !== Analyzer.prototype; proto = Object.getPrototypeOf(proto) as object | null) {
    if (Object.prototype.hasOwnProperty.call(proto, event)) {
      const fn = (proto as Record<string, unknown>)[event];
      return typeof fn === 'function' ? fn as EventMethod : undefined;
    }
  }
  return undefined;
}

const MaxRecordLineBytes = 1 << 20;

function isValue(v: unknown): boolean {
  return typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean';
}

/** One line of a recorded trace as a record; a typed error naming the file and line otherwise. */
export function parseRecordLine(line: string, where: { path: string; line: number }): TraceRecord {
  const bad = (why: string): VirtkitError =>
    new VirtkitError('argument.invalid', `${where.path}:${where.line}: not a trace record (${why})`, { path: where.path, line: where.line });
  if (line.length > MaxRecordLineBytes) throw bad('line too long');
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    throw bad('not JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad('not an object');
  const r = v as Record<string, unknown>;
  if (typeof r.event !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]{0,127}$/.test(r.event)) throw bad('event must be an event name');
  if (typeof r.time !== 'string') throw bad('time must be a string');
  if (typeof r.args !== 'object' || r.args === null || Array.isArray(r.args)) throw bad('args must be an object');
  const args: TraceArgs = {};
  for (const [k, val] of Object.entries(r.args)) {
    if (!isValue(val)) throw bad(`args.${k} must be a number, string or boolean`);
    args[k] = val as TraceArgs[string];
  }
  const rec: TraceRecord = { event: r.event, time: r.time, args };
  if (Number.isInteger(r.tid)) rec.tid = r.tid as number;
  if (Number.isInteger(r.vcpu)) rec.vcpu = r.vcpu as number;
  return rec;
}

/** The records of a file `virtkit trace --output` wrote. */
export async function* readTraceFile(path: string): AsyncGenerator<TraceRecord> {
  const input = createReadStream(path, { encoding: 'utf8' });
  const opened = new Promise<void>((resolve, reject) => {
    input.once('open', () => resolve());
    input.once('error', (err: NodeJS.ErrnoException) => reject(new VirtkitError('argument.invalid', `${path}: ${err.code ?? err.message}`, { path })));
  });
  await opened;
  const lines = createInterface({ input, crlfDelay: Infinity });
  let n = 0;
  try {
    for await (const line of lines) {
      n++;
      if (line.trim() === '') continue;
      yield parseRecordLine(line, { path, line: n });
    }
  } finally {
    lines.close();
    input.destroy();
  }
}

/** Feeds every record of `source` to the analyzer, in order; returns the analyzer after `end()`. */
export async function runAnalyzer<A extends Analyzer>(analyzer: A, source: TraceSource): Promise<A> {
  const records: AsyncIterable<TraceRecord> | Iterable<TraceRecord> = typeof source === 'string' ? readTraceFile(source) : source;
  await analyzer.begin();
  for await (const rec of records) {
    const fn = methodFor(analyzer, rec.event);
    if (fn) await fn.call(analyzer, rec.args, rec);
    else await analyzer.catchall(rec.event, rec.args, rec);
  }
  await analyzer.end();
  return analyzer;
}
