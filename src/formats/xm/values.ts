/** Reading a setting's literal as the type its key takes, with a typed error naming the line. */
import { xmValueError } from './errors.js';
import type { XmAssignment, XmValue } from './parser.js';

export class ValueReader {
  constructor(private readonly sourceName: string | undefined) {}

  fail(value: XmValue, key: string, message: string): never {
    throw xmValueError(value.at, key, message, this.sourceName);
  }

  string(a: XmAssignment): string {
    if (a.value.kind !== 'string') this.fail(a.value, a.name, `must be a string, got ${kindName(a.value)}`);
    return a.value.value;
  }

  /** A whole number, written as a number or a string of digits (`memory = "512"` is common). */
  integer(a: XmAssignment, min = 0, max = Number.MAX_SAFE_INTEGER): number {
    const v = a.value;
    let n: number | undefined;
    if (v.kind === 'number' && v.integer) n = v.value;
    else if (v.kind === 'number' && Number.isInteger(v.value)) n = v.value;
    else if (v.kind === 'string' && /^\s*[0-9]{1,15}\s*$/.test(v.value)) n = Number(v.value);
    if (n === undefined) this.fail(v, a.name, `must be a whole number, got ${kindName(v)}`);
    if (n < min || n > max) this.fail(v, a.name, `must be from ${min} to ${max}, got ${n}`);
    return n;
  }

  /** 0/1, True/False, or the strings xl accepts for them. */
  boolean(a: XmAssignment): boolean {
    const v = a.value;
    if (v.kind === 'bool') return v.value;
    if (v.kind === 'number' && (v.value === 0 || v.value === 1)) return v.value === 1;
    if (v.kind === 'string' && /^(1|0|yes|no|true|false|on|off)$/i.test(v.value.trim())) return /^(1|yes|true|on)$/i.test(v.value.trim());
    return this.fail(v, a.name, `must be 0 or 1 (or True/False), got ${kindName(v)}`);
  }

  /** A list of strings; a lone string counts as a list of one. */
  strings(a: XmAssignment): { text: string; at: XmValue['at'] }[] {
    const v = a.value;
    if (v.kind === 'string') return [{ text: v.value, at: v.at }];
    if (v.kind !== 'list') this.fail(v, a.name, `must be a list of strings, got ${kindName(v)}`);
    return v.items.map((item, i) => {
      if (item.kind !== 'string') this.fail(item, `${a.name}[${i}]`, `must be a string, got ${kindName(item)}`);
      return { text: item.value, at: item.at };
    });
  }
}

export function kindName(v: XmValue): string {
  switch (v.kind) {
    case 'string': return `the string ${JSON.stringify(v.value.length > 40 ? `${v.value.slice(0, 37)}...` : v.value)}`;
    case 'number': return `the number ${v.value}`;
    case 'bool': return v.value ? 'True' : 'False';
    case 'none': return 'None';
    case 'list': return v.tuple ? 'a tuple' : 'a list';
  }
}
