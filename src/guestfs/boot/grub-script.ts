/**
 * The part of GRUB 2's script language a grub.cfg menu needs: words with GRUB's quoting
 * (single quotes literal; double quotes with `\$ \" \\` escapes and `$var` expansion;
 * backslash escapes and backslash-newline continuation outside quotes; `#` comments),
 * commands separated by newlines and `;`, and `{ ... }` blocks, parsed into a tree of
 * statements. Variables are kept unexpanded here: the menu builder expands them with the
 * values of the simple `set` commands it has seen. Linear in the input; nesting limited.
 */
import { MAX_NESTING, configError } from './types.js';

/** A piece of a word: literal text or a variable reference, and whether it was quoted. */
export type Segment =
  | { readonly text: string; readonly quoted: boolean }
  | { readonly variable: string; readonly quoted: boolean };

export type Word = readonly Segment[];

export interface Statement {
  readonly words: readonly Word[];
  /** The `{ ... }` block that ended the command, if any. */
  readonly body?: readonly Statement[];
  /** 1-based line where the command starts. */
  readonly line: number;
}

type Token =
  | { readonly kind: 'word'; readonly word: Word; readonly line: number }
  | { readonly kind: 'end' | 'open' | 'close'; readonly line: number };

const NAME_CHAR = /[A-Za-z0-9_]/;
const SPECIAL_VARIABLE = /[?@#*]/;

function isBlank(c: string | undefined): boolean {
  return c === ' ' || c === '\t' || c === '\r' || c === '\f' || c === '\v';
}

function endsWord(c: string | undefined): boolean {
  return c === undefined || isBlank(c) || c === '\n' || c === ';';
}

/** Splits grub.cfg text into words, command ends and braces. */
export function tokenize(text: string, source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  let line = 1;
  const n = text.length;

  /** Reads `$name`, `${name}` or a lone `$` at text[i] === '$'. */
  const readVariable = (quoted: boolean): Segment => {
    const next = text[i + 1];
    if (next === '{') {
      const close = text.indexOf('}', i + 2);
      const newline = text.indexOf('\n', i + 2);
      if (close < 0 || (newline >= 0 && newline < close)) throw configError(source, `line ${line}: unterminated \${`, { line });
      const name = text.slice(i + 2, close);
      i = close + 1;
      return { variable: name, quoted };
    }
    if (next !== undefined && SPECIAL_VARIABLE.test(next)) {
      i += 2;
      return { variable: next, quoted };
    }
    let j = i + 1;
    while (j < n && NAME_CHAR.test(text[j]!)) j++;
    if (j === i + 1) {
      i++;
      return { text: '$', quoted };
    }
    const name = text.slice(i + 1, j);
    i = j;
    return { variable: name, quoted };
  };

  while (i < n) {
    const c = text[i]!;
    if (isBlank(c)) {
      i++;
      continue;
    }
    if (c === '\n' || c === ';') {
      tokens.push({ kind: 'end', line });
      if (c === '\n') line++;
      i++;
      continue;
    }
    if (c === '#') {
      while (i < n && text[i] !== '\n') i++;
      continue;
    }
    if (c === '\\' && text[i + 1] === '\n') {
      i += 2;
      line++;
      continue;
    }
    if ((c === '{' || c === '}') && (endsWord(text[i + 1]) || text[i + 1] === '}')) {
      tokens.push({ kind: c === '{' ? 'open' : 'close', line });
      i++;
      continue;
    }
    // A word: runs of unquoted text, quoted strings and variables until a blank or separator.
    const startLine = line;
    const segments: Segment[] = [];
    let literal = '';
    const flush = (quoted: boolean): void => {
      if (literal !== '') segments.push({ text: literal, quoted });
      literal = '';
    };
    while (i < n && !endsWord(text[i])) {
      const ch = text[i]!;
      if (ch === '\\') {
        const next = text[i + 1];
        if (next === '\n') {
          line++;
          i += 2;
        } else if (next === undefined) {
          literal += '\\';
          i++;
        } else {
          literal += next;
          i += 2;
        }
      } else if (ch === "'") {
        flush(false);
        const close = text.indexOf("'", i + 1);
        if (close < 0) throw configError(source, `line ${line}: unterminated single quote`, { line });
        const body = text.slice(i + 1, close);
        for (const x of body) if (x === '\n') line++;
        segments.push({ text: body, quoted: true });
        i = close + 1;
      } else if (ch === '"') {
        flush(false);
        i++;
        for (;;) {
          if (i >= n) throw configError(source, `line ${startLine}: unterminated double quote`, { line: startLine });
          const q = text[i]!;
          if (q === '"') {
            i++;
            break;
          }
          if (q === '\\') {
            const next = text[i + 1];
            if (next === '\n') {
              line++;
              i += 2;
            } else if (next === '$' || next === '"' || next === '\\') {
              literal += next;
              i += 2;
            } else {
              literal += '\\';
              i++;
            }
          } else if (q === '$') {
            flush(true);
            segments.push(readVariable(true));
          } else {
            if (q === '\n') line++;
            literal += q;
            i++;
          }
        }
        // A quoted empty string is still a word.
        if (literal === '' && segments.length === 0) segments.push({ text: '', quoted: true });
        flush(true);
      } else if (ch === '$') {
        flush(false);
        segments.push(readVariable(false));
      } else {
        literal += ch;
        i++;
      }
    }
    flush(false);
    tokens.push({ kind: 'word', word: segments, line: startLine });
  }
  return tokens;
}

/** Groups tokens into commands and `{ ... }` blocks. Unbalanced braces are `boot.config-corrupt`. */
export function parseScript(text: string, source: string): Statement[] {
  const tokens = tokenize(text, source);
  interface Frame { statements: Statement[]; head: readonly Word[]; line: number }
  const root: Statement[] = [];
  const stack: Frame[] = [];
  let current = root;
  let words: Word[] = [];
  let line = 1;
  const flush = (): void => {
    if (words.length > 0) current.push({ words, line });
    words = [];
  };
  for (const t of tokens) {
    if (t.kind === 'word') {
      if (words.length === 0) line = t.line;
      words.push(t.word);
    } else if (t.kind === 'end') {
      flush();
    } else if (t.kind === 'open') {
      if (stack.length >= MAX_NESTING) throw configError(source, `line ${t.line}: blocks nested deeper than ${MAX_NESTING}`, { line: t.line });
      stack.push({ statements: current, head: words, line: words.length === 0 ? t.line : line });
      words = [];
      current = [];
    } else {
      flush();
      const frame = stack.pop();
      if (frame === undefined) throw configError(source, `line ${t.line}: "}" without "{"`, { line: t.line });
      frame.statements.push({ words: frame.head, body: current, line: frame.line });
      current = frame.statements;
    }
  }
  flush();
  const open = stack.pop();
  if (open !== undefined) throw configError(source, `line ${open.line}: block is not closed`, { line: open.line });
  return root;
}
