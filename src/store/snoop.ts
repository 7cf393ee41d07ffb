/**
 * Formatting of snoop records, in the spirit of xenstore-snoop: one line per operation with
 * the client's pid, the transaction id or '-', the operation, the path, the value and the
 * result. `virtkit snoop` prints these; `--json` prints `formatSnoopJson` lines instead.
 *
 *   PID     CLIENT       TX  OP
 *   4711    virtkit      -   WRITE: /domain/web1/state running -> OK @42
 *   4711    virtkit      7   READ: /domain/web1/state -> running
 *   4711    virtkit      7   [ERROR] READ: /domain/web2/state -> ENOENT
 *   4711    virtkit      7   COMMIT: -> OK @43
 */
import type { SnoopRecord } from './types.js';

/** Values longer than this are cut in the one-line form (the JSON form keeps them whole). */
export const SnoopValueWidth = 160;

export function formatSnoopHeader(): string {
  return `${'PID'.padEnd(7)} ${'CLIENT'.padEnd(12)} ${'TX'.padEnd(3)} OP`;
}

export function formatSnoopLine(record: SnoopRecord): string {
  const pid = record.origin.pid === undefined ? '-' : String(record.origin.pid);
  const client = record.origin.client === undefined ? '-' : printable(record.origin.client, 32);
  const tx = String(record.tx);
  const op = record.op.toUpperCase();
  const error = record.result === 'OK' ? '' : '[ERROR] ';
  const path = record.path ?? '';
  // Reads show what they returned after the arrow, writes show the value before it.
  const returnsValue = record.op === 'read' || record.op === 'list' || record.op === 'exists';
  let body: string;
  if (record.op === 'tx-start') {
    body = `-> ${tx}`;
  } else if (returnsValue) {
    body = `${path} -> ${record.result === 'OK' ? showValue(record.value ?? '') : record.result}`;
  } else {
    const value = record.value === undefined ? '' : ` ${showValue(record.value)}`;
    body = `${path}${value}${path === '' && value === '' ? '' : ' '}-> ${record.result}`;
  }
  const revision = record.revision === undefined ? '' : ` @${record.revision}`;
  return `${pid.padEnd(7)} ${client.padEnd(12)} ${tx.padEnd(3)} ${error}${op}: ${body}${revision}`;
}

/** One JSON object per line, the machine form of a record. */
export function formatSnoopJson(record: SnoopRecord): string {
  return JSON.stringify(record);
}

/** A value as one token: bare when it is plain printable text, else JSON-quoted; cut when long. */
function showValue(value: string): string {
  const cut = value.length > SnoopValueWidth;
  const shown = cut ? value.slice(0, SnoopValueWidth) : value;
  const bare = shown.length > 0 && /^[\x21-\x7e]+$/.test(shown) && !shown.startsWith('"');
  const token = bare ? shown : JSON.stringify(shown);
  return cut ? `${token}...(${value.length} chars)` : token;
}

function printable(text: string, width: number): string {
  const clean = text.replace(/[^\x21-\x7e]/g, '?');
  return clean.length > width ? clean.slice(0, width) : clean;
}
