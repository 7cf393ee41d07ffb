/**
 * A fast reader for the YAML that definitions are written in: block mappings and block
 * sequences of plain scalars, comments, plain scalars folded over several lines (the guest
 * kit's `cmdline`), one-line quoted scalars without escapes, and the empty `[]` and `{}`. It
 * answers `undefined` for anything else (escapes, other flow collections, anchors and aliases,
 * tags, block scalars, document markers, tabs, duplicate keys, floats, octal or hex numbers,
 * ...), and the full parser (`yaml`) reads the document, errors and positions included. What it does accept it reads exactly as the full parser (YAML 1.2, core
 * schema) does: `src/conf/plain-yaml.test.ts` holds it to that on every definition in the
 * repository and on thousands of generated documents.
 *
 * Why: the full parser builds a syntax tree and a document for every define, about 0.1 ms of
 * CPU for a 15-line definition, a third of what the daemon spends on a define besides its
 * commit; this reader takes a few microseconds.
 */

interface Line {
  readonly indent: number;
  /** The line's content after its indentation, its comment and trailing spaces removed. */
  readonly text: string;
  /** A blank or comment-only line came before it (a plain scalar does not continue over one). */
  readonly afterGap: boolean;
  /** It ended with a comment (which ends a plain scalar too). */
  readonly commented: boolean;
}

/** Thrown inside the reader when the document leaves the subset; caught by `parsePlainYaml`. */
class NotPlain extends Error {}

const KeyPattern = /^[A-Za-z_][A-Za-z0-9_-]*$/;
/** Keys the core schema would read as something else than their text, or that JS objects treat specially. */
const SpecialKeys = new Set(['true', 'True', 'TRUE', 'false', 'False', 'FALSE', 'null', 'Null', 'NULL', '__proto__', 'constructor', 'prototype']);
/** Characters a plain scalar of the subset may hold; anything else goes to the full parser. */
const ScalarChars = /^[A-Za-z0-9_./=+~(),;:@^$ -]+$/;
/** How a plain scalar of the subset may start: not an indicator, '-' only before a digit. */
const ScalarStart = /^(?:[A-Za-z0-9_./~(+]|-[0-9])/;
const Int = /^[-+]?(?:0|[1-9][0-9]{0,14})$/;
/** Anything the core schema would read as a float, an octal or hex int, infinity or NaN. */
const OtherNumber = /^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$/;

/** The document as data, or undefined when it is not in the subset (the full parser reads it then). */
export function parsePlainYaml(text: string): Record<string, unknown> | undefined {
  const lines = splitLines(text);
  if (lines === undefined || lines.length === 0 || lines[0]!.indent !== 0) return undefined;
  const reader = new Reader(lines);
  try {
    const doc = reader.mapping(0);
    if (!reader.done) return undefined;
    return doc;
  } catch (err) {
    if (err instanceof NotPlain) return undefined;
    throw err;
  }
}

function splitLines(text: string): Line[] | undefined {
  // Printable ASCII and newlines only: no tabs, no CR, no byte order mark, nothing to escape.
  if (!/^[\x20-\x7e\n]*$/.test(text)) return undefined;
  const out: Line[] = [];
  let afterGap = false;
  for (const raw of text.split('\n')) {
    let indent = 0;
    while (indent < raw.length && raw.charCodeAt(indent) === 0x20) indent++;
    let content = raw.slice(indent);
    if (content === '' || content.startsWith('#')) {
      afterGap = true;
      continue;
    }
    // Directives and document markers.
    if (indent === 0 && (content.startsWith('%') || content.startsWith('---') || content.startsWith('...'))) return undefined;
    const comment = content.indexOf(' #');
    if (comment >= 0) content = content.slice(0, comment);
    content = content.trimEnd();
    if (content.includes('#')) return undefined;
    out.push({ indent, text: content, afterGap, commented: comment >= 0 });
    afterGap = false;
  }
  return out;
}

class Reader {
  private i = 0;

  constructor(private readonly lines: readonly Line[]) {}

  get done(): boolean {
    return this.i >= this.lines.length;
  }

  private get line(): Line | undefined {
    return this.lines[this.i];
  }

  /** A block mapping whose keys sit at column `indent`. */
  mapping(indent: number, first?: string): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    let text = first;
    for (;;) {
      if (text === undefined) {
        const line = this.line;
        if (line === undefined || line.indent < indent) break;
        if (line.indent > indent || isSequenceItem(line.text)) throw new NotPlain();
        text = line.text;
      }
      this.i++;
      const colon = keyEnd(text);
      const key = text.slice(0, colon);
      if (!KeyPattern.test(key) || SpecialKeys.has(key) || Object.hasOwn(out, key)) throw new NotPlain();
      const rest = text.slice(colon + 1).trimStart();
      out[key] = rest === '' ? this.nested(indent) : this.scalar(rest, indent);
      text = undefined;
    }
    return out;
  }

  /** A block sequence whose dashes sit at column `indent`. */
  private sequence(indent: number): unknown[] {
    const out: unknown[] = [];
    for (;;) {
      const line = this.line;
      if (line === undefined || line.indent < indent) break;
      if (line.indent > indent) throw new NotPlain();
      // A key at the dashes' column ends a sequence written at its key's column (`disks:\n- a\nname: x`).
      if (!isSequenceItem(line.text)) break;
      const rest = line.text.slice(1).trimStart();
      if (rest === '') {
        this.i++;
        out.push(this.nested(indent, false));
      } else if (isSequenceItem(rest) || rest.startsWith('?') || rest.startsWith(':')) {
        throw new NotPlain();
      } else if (hasKey(rest)) {
        // `- key: value`: a mapping whose keys sit at the column of `key`.
        out.push(this.mapping(indent + (line.text.length - rest.length), rest));
      } else {
        this.i++;
        out.push(this.scalar(rest, indent));
      }
    }
    return out;
  }

  /** What follows `key:` or `-` with nothing after it on the line: a deeper block, a sequence at the same column, or null. */
  private nested(indent: number, sequenceHere = true): unknown {
    const next = this.line;
    if (next === undefined || next.indent < indent) return null;
    if (next.indent === indent) return sequenceHere && isSequenceItem(next.text) ? this.sequence(indent) : null;
    return isSequenceItem(next.text) ? this.sequence(next.indent) : this.mapping(next.indent);
  }

  /** A plain scalar starting with `first`, folded over the deeper lines right after it; or a one-line quoted one, `[]`, `{}`. */
  private scalar(first: string, indent: number): unknown {
    const oneLine = oneLineValue(first);
    if (oneLine !== undefined) {
      const next = this.line;
      if (next !== undefined && next.indent > indent) throw new NotPlain();
      return oneLine.value;
    }
    let value = checkedScalarText(first);
    let commented = this.lines[this.i - 1]?.commented ?? false;
    for (let line = this.line; line !== undefined && line.indent > indent; line = this.line) {
      if (line.afterGap || commented) throw new NotPlain();
      commented = line.commented;
      value += ` ${checkedScalarText(line.text)}`;
      this.i++;
    }
    return resolve(value);
  }
}

function isSequenceItem(text: string): boolean {
  return text === '-' || text.startsWith('- ');
}

/** Where the key of `key: value` or `key:` ends; throws when the line is not such an entry. */
function keyEnd(text: string): number {
  const colon = text.indexOf(':');
  if (colon <= 0 || (colon + 1 < text.length && text[colon + 1] !== ' ')) throw new NotPlain();
  return colon;
}

function hasKey(text: string): boolean {
  const colon = text.indexOf(':');
  return colon > 0 && (colon + 1 === text.length || text[colon + 1] === ' ');
}

/** A value that is whole on its line: a quoted scalar without escapes, or an empty flow collection. */
function oneLineValue(text: string): { value: unknown } | undefined {
  if (text === '[]') return { value: [] };
  if (text === '{}') return { value: {} };
  // Printable ASCII between the quotes, no escape, no quote of the same kind: the text itself.
  if (/^"[^"\\]*"$/.test(text) || /^'[^']*'$/.test(text)) return { value: text.slice(1, -1) };
  return undefined;
}

function checkedScalarText(text: string): string {
  if (!ScalarStart.test(text) || !ScalarChars.test(text) || text.includes(': ') || text.endsWith(':')) throw new NotPlain();
  return text;
}

/** The core schema's reading of a plain scalar: null, a boolean, an integer or a string. */
function resolve(text: string): unknown {
  switch (text) {
    case '~': case 'null': case 'Null': case 'NULL': return null;
    case 'true': case 'True': case 'TRUE': return true;
    case 'false': case 'False': case 'FALSE': return false;
  }
  if (Int.test(text)) {
    // -0 and +0 read as numbers whose sign the full parser keeps its own way: leave them to it.
    if (text === '-0' || text === '+0') throw new NotPlain();
    return Number(text);
  }
  if (OtherNumber.test(text)) throw new NotPlain();
  return text;
}
