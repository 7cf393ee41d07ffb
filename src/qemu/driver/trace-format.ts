/**
 * QEMU trace events as data: the catalog of event declarations (QEMU's `trace-events` syntax,
 * which Debian ships whole as /usr/share/qemu/trace-events-all) and the parser of the lines
 * QEMU's `log` trace backend writes, typed per the event's declaration:
 *
 *   virtio_blk_handle_read(void *vdev, void *req, uint64_t sector, size_t nsectors) "vdev %p req %p sector %"PRIu64" nsectors %zu"
 *   virtio_blk_handle_read vdev 0x55d4c0 req 0x7f00 sector 2048 nsectors 8        (the log line)
 *   1234@1700000000.123456:virtio_blk_handle_read vdev ...                          (with -msg timestamp=on)
 *
 * Both inputs are untrusted text (a log line may carry guest-influenced strings): lines are
 * bounded, the matcher is a linear-time hand-written scanner, and a line that does not fit
 * its declaration is reported as unparsed rather than guessed at.
 */
import { readFile } from 'node:fs/promises';

/** Where Debian's qemu-system-common puts every trace event declaration of the build. */
export const DefaultTraceEventsFile = '/usr/share/qemu/trace-events-all';

/** A typed argument value: integers as numbers (decimal strings beyond 2^53), pointers as `0x...` strings. */
export type TraceValue = number | string | boolean;

/** One trace record as virtkit streams it. */
export interface TraceRecord {
  event: string;
  /** ISO time: QEMU's own with `-msg timestamp=on`, else when the daemon read the line. */
  time: string;
  /** The QEMU thread that logged it (QEMU prints it only with `-msg timestamp=on`). */
  tid?: number;
  /** The vCPU index of that thread, when the thread is a vCPU's. */
  vcpu?: number;
  /** Arguments by their declared names; a line that did not fit its format has `{ raw }` only. */
  args: Record<string, TraceValue>;
}

export interface TraceArg {
  type: string;
  name: string;
}

export interface TraceEventDecl {
  name: string;
  args: TraceArg[];
  /** The printf format, PRI macros folded into plain conversions (`%"PRIu64"` -> `%llu`). */
  format: string;
}

/** Longest line (and declaration) looked at: trace lines are short; longer text is not a record. */
export const MaxTraceLineBytes = 4096;

const DeclLine = /^\s*((?:[a-z]+\s+)*)([A-Za-z_][A-Za-z0-9_]*)\(([^)]*)\)\s*(".*)$/;

/** The string literal concatenation `"a %" PRIx64 " b"` as one format string, or undefined. */
function foldFormat(text: string): string | undefined {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === ' ' || c === '\t') { i++; continue; }
    if (c === '"') {
      const end = text.indexOf('"', i + 1);
      if (end < 0) return undefined;
      out += text.slice(i + 1, end);
      i = end + 1;
      continue;
    }
    const macro = /^PRI([diouxX])(8|16|32|64|PTR|MAX)/.exec(text.slice(i));
    if (!macro) return undefined;
    out += `${macro[2] === '64' || macro[2] === 'MAX' ? 'll' : ''}${macro[1]}`;
    i += macro[0].length;
  }
  return out;
}

/** One declaration line of a trace-events file, or undefined for comments and other text. */
export function parseTraceDecl(line: string): TraceEventDecl | undefined {
  if (line.length > MaxTraceLineBytes) return undefined;
  const m = DeclLine.exec(line);
  if (!m) return undefined;
  const format = foldFormat(m[4]!);
  if (format === undefined) return undefined;
  const args: TraceArg[] = [];
  const list = m[3]!.trim();
  if (list !== '' && list !== 'void') {
    for (const part of list.split(',')) {
      const a = /^(.*?)([A-Za-z_][A-Za-z0-9_]*)$/.exec(part.trim());
      if (!a) return undefined;
      args.push({ type: a[1]!.trim(), name: a[2]! });
    }
  }
  return { name: m[2]!, args, format };
}

/** Every declaration of a trace-events file's text, by event name. */
export function parseTraceCatalog(text: string): Map<string, TraceEventDecl> {
  const out = new Map<string, TraceEventDecl>();
  for (const line of text.split('\n')) {
    const d = parseTraceDecl(line);
    if (d) out.set(d.name, d);
  }
  return out;
}

let catalogOnce: Promise<Map<string, TraceEventDecl>> | undefined;

/** The host's catalog (read once; empty when the file is missing: records then carry `raw`). */
export function hostTraceCatalog(path = DefaultTraceEventsFile): Promise<Map<string, TraceEventDecl>> {
  if (path !== DefaultTraceEventsFile) return readFile(path, 'utf8').then(parseTraceCatalog, () => new Map());
  catalogOnce ??= readFile(path, 'utf8').then(parseTraceCatalog, () => new Map());
  return catalogOnce;
}

// ---- formats ---------------------------------------------------------------------------

type Piece = { lit: string } | { conv: string; long: boolean };

/** The format as literal text and conversions (`%d`, `%llx`, `%p`, `%s`...); `%*d` and friends are not supported. */
function pieces(format: string): Piece[] | undefined {
  const out: Piece[] = [];
  let lit = '';
  for (let i = 0; i < format.length; i++) {
    const c = format[i]!;
    if (c !== '%') { lit += c; continue; }
    const m = /^%([-+ #0]*)(\d*)(?:\.(\d+))?(hh|h|ll|l|j|z|t|L|q)?([diouxXpscfgeEG%])/.exec(format.slice(i));
    if (!m) return undefined;
    i += m[0].length - 1;
    if (m[5] === '%') { lit += '%'; continue; }
    if (lit !== '') out.push({ lit });
    lit = '';
    out.push({ conv: m[5]!, long: m[4] === 'll' || m[4] === 'l' || m[4] === 'j' || m[4] === 'z' || m[4] === 'q' });
  }
  if (lit !== '') out.push({ lit });
  return out;
}

const piecesCache = new Map<string, Piece[] | null>();

function piecesOf(format: string): Piece[] | undefined {
  let p = piecesCache.get(format);
  if (p === undefined) {
    p = pieces(format) ?? null;
    if (piecesCache.size > 10_000) piecesCache.clear();
    piecesCache.set(format, p);
  }
  return p ?? undefined;
}

/** The characters a conversion's text may hold (`%s` is bounded by the next literal instead). */
function fitsConv(conv: string, ch: string, first: boolean): boolean {
  switch (conv) {
    case 'd': case 'i': return (ch >= '0' && ch <= '9') || (first && (ch === '-' || ch === '+' || ch === ' '));
    case 'u': return ch >= '0' && ch <= '9';
    case 'o': return ch >= '0' && ch <= '7';
    case 'x': case 'X': return /[0-9a-fA-F]/.test(ch);
    case 'p': return /[0-9a-fA-Fx(nil)]/.test(ch);
    case 'c': return first;
    default: return /[-+0-9.eEinfaINFA]/.test(ch);
  }
}

function integer(text: string, radix: number): TraceValue | undefined {
  const t = text.trim();
  if (t === '' || !/^[-+]?[0-9a-fA-F]+$/.test(t)) return undefined;
  const n = Number.parseInt(t, radix);
  if (Number.isSafeInteger(n)) return n;
  // Beyond 2^53 as exact decimal text (BigInt parses any length in its radix).
  const neg = t.startsWith('-');
  const digits = t.replace(/^[-+]/, '');
  const prefix = radix === 16 ? '0x' : radix === 8 ? '0o' : '';
  try {
    const big = BigInt(`${prefix}${digits}`);
    return `${neg ? '-' : ''}${big.toString()}`;
  } catch {
    return undefined;
  }
}

function typed(conv: string, text: string, arg: TraceArg | undefined): TraceValue | undefined {
  switch (conv) {
    case 'd': case 'i': case 'u': {
      const v = integer(text, 10);
      if (v !== undefined && arg?.type === 'bool') return v !== 0;
      return v;
    }
    case 'x': case 'X': return integer(text, 16);
    case 'o': return integer(text, 8);
    case 'p': return text === '(nil)' ? '0x0' : /^0x[0-9a-f]+$/.test(text) ? text : undefined;
    case 's': case 'c': return text;
    default: {
      const n = Number(text);
      return Number.isNaN(n) && !/nan/i.test(text) ? undefined : n;
    }
  }
}

/**
 * The arguments of `body` (the log line after the event name and its space) per `decl`, by
 * name; undefined when the text does not fit the format. Linear: each conversion takes the
 * longest run its characters allow, `%s` runs to the next literal text (QEMU's formats put a
 * literal between conversions).
 */
export function parseTraceArgs(decl: TraceEventDecl, body: string): Record<string, TraceValue> | undefined {
  const ps = piecesOf(decl.format);
  if (!ps) return undefined;
  const out: Record<string, TraceValue> = {};
  let pos = 0;
  let argIndex = 0;
  for (let k = 0; k < ps.length; k++) {
    const p = ps[k]!;
    if ('lit' in p) {
      if (!body.startsWith(p.lit, pos)) return undefined;
      pos += p.lit.length;
      continue;
    }
    let end: number;
    if (p.conv === 's') {
      const next = ps[k + 1];
      if (next && 'lit' in next) {
        end = body.indexOf(next.lit, pos);
        if (end < 0) return undefined;
      } else if (!next) {
        end = body.length;
      } else {
        return undefined;
      }
    } else {
      end = pos;
      while (end < body.length && fitsConv(p.conv, body[end]!, end === pos)) end++;
    }
    const arg = decl.args[argIndex];
    const value = typed(p.conv, body.slice(pos, end), arg);
    if (value === undefined) return undefined;
    out[arg?.name ?? `arg${argIndex}`] = value;
    argIndex++;
    pos = end;
  }
  return pos === body.length ? out : undefined;
}

const Prefix = /^(\d{1,10})@(\d{1,12})\.(\d{1,9}):/;
const EventName = /^[A-Za-z_][A-Za-z0-9_]{0,127}/;

/** The event name a log line starts with (after the optional `TID@SEC.USEC:`), for a cheap filter. */
export function traceLineEvent(line: string): string | undefined {
  const pre = Prefix.exec(line);
  const rest = pre ? line.slice(pre[0].length) : line;
  const name = EventName.exec(rest)?.[0];
  if (name === undefined) return undefined;
  const after = rest[name.length];
  return after === ' ' || after === undefined ? name : undefined;
}

/**
 * One log line as a trace record, or undefined when it is not a trace line of a known event
 * (`known`: the events the caller follows). `now` stamps lines QEMU printed without a time.
 */
export function parseTraceLine(line: string, catalog: ReadonlyMap<string, TraceEventDecl>, known: ReadonlySet<string>, now: Date = new Date()): TraceRecord | undefined {
  if (line.length > MaxTraceLineBytes) return undefined;
  const pre = Prefix.exec(line);
  const rest = pre ? line.slice(pre[0].length) : line;
  const name = EventName.exec(rest)?.[0];
  if (name === undefined || !known.has(name)) return undefined;
  if (rest.length > name.length && rest[name.length] !== ' ') return undefined;
  const body = rest.slice(name.length + 1);
  const decl = catalog.get(name);
  const args = decl ? parseTraceArgs(decl, body) : undefined;
  const time = pre ? new Date(Number(pre[2]) * 1000 + Math.floor(Number(pre[3]!.padEnd(6, '0').slice(0, 6)) / 1000)) : now;
  const rec: TraceRecord = { event: name, time: Number.isNaN(time.getTime()) ? now.toISOString() : time.toISOString(), args: args ?? { raw: body } };
  if (pre) rec.tid = Number(pre[1]);
  return rec;
}
