/**
 * A small strict parser of the Prometheus text exposition format (0.0.4), for tests: every
 * line is a comment (`# HELP`, `# TYPE`), blank, or a sample `name{labels} value [timestamp]`;
 * anything else throws with the line number. Label values are unescaped (\\, \", \n).
 */
export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface PromFamily {
  name: string;
  type?: string;
  help?: string;
  samples: PromSample[];
}

const NameRe = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LabelNameRe = /^[a-zA-Z_][a-zA-Z0-9_]*/;
const Types = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

function value(text: string, line: number): number {
  // As Prometheus' own parser (Go's ParseFloat): Inf and NaN in any case.
  if (/^\+?inf$/i.test(text)) return Infinity;
  if (/^-inf$/i.test(text)) return -Infinity;
  if (/^nan$/i.test(text)) return NaN;
  if (!/^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new Error(`line ${line}: not a sample value: ${text}`);
  return Number(text);
}

/** The families of a scrape by name (samples of `x_bucket`, `x_sum`, `x_count` go to family `x`). */
export function parsePromText(text: string): Map<string, PromFamily> {
  const families = new Map<string, PromFamily>();
  const family = (name: string): PromFamily => {
    let f = families.get(name);
    if (!f) { f = { name, samples: [] }; families.set(name, f); }
    return f;
  };
  const lines = text.split('\n');
  if (lines.at(-1) !== '') throw new Error('the text must end with a newline');
  lines.forEach((raw, i) => {
    const n = i + 1;
    if (raw === '') return;
    if (raw.startsWith('#')) {
      const m = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(raw);
      if (!m) {
        if (/^# (HELP|TYPE)/.test(raw)) throw new Error(`line ${n}: malformed ${raw}`);
        return;
      }
      const f = family(m[2]!);
      if (m[1] === 'TYPE') {
        if (!Types.has(m[3]!)) throw new Error(`line ${n}: unknown type ${m[3]}`);
        if (f.type !== undefined) throw new Error(`line ${n}: second TYPE for ${m[2]}`);
        if (f.samples.length > 0) throw new Error(`line ${n}: TYPE after samples of ${m[2]}`);
        f.type = m[3]!;
      } else {
        f.help = m[3]!;
      }
      return;
    }
    const name = NameRe.exec(raw)?.[0];
    if (!name) throw new Error(`line ${n}: no metric name: ${raw}`);
    let pos = name.length;
    const labels: Record<string, string> = {};
    if (raw[pos] === '{') {
      pos++;
      while (raw[pos] !== '}') {
        const ln = LabelNameRe.exec(raw.slice(pos))?.[0];
        if (!ln) throw new Error(`line ${n}: bad label name at ${pos}`);
        pos += ln.length;
        if (raw.slice(pos, pos + 2) !== '="') throw new Error(`line ${n}: expected =" after ${ln}`);
        pos += 2;
        let v = '';
        for (;;) {
          const c = raw[pos];
          if (c === undefined) throw new Error(`line ${n}: unterminated label value`);
          pos++;
          if (c === '"') break;
          if (c === '\\') {
            const e = raw[pos++];
            if (e === 'n') v += '\n'; else if (e === '\\' || e === '"') v += e; else throw new Error(`line ${n}: bad escape \\${e}`);
          } else {
            v += c;
          }
        }
        if (ln in labels) throw new Error(`line ${n}: label ${ln} twice`);
        labels[ln] = v;
        if (raw[pos] === ',') pos++;
        else if (raw[pos] !== '}') throw new Error(`line ${n}: expected , or } at ${pos}`);
      }
      pos++;
    }
    if (raw[pos] !== ' ') throw new Error(`line ${n}: expected a space before the value`);
    const rest = raw.slice(pos + 1).split(' ');
    if (rest.length > 2) throw new Error(`line ${n}: trailing text`);
    const v = value(rest[0]!, n);
    if (rest[1] !== undefined && !/^-?\d+$/.test(rest[1])) throw new Error(`line ${n}: bad timestamp`);
    const base = name.replace(/_(bucket|sum|count)$/, '');
    const fam = families.has(name) ? family(name) : families.has(base) && families.get(base)!.type === 'histogram' ? family(base) : family(name);
    fam.samples.push({ name, labels, value: v });
  });
  return families;
}
