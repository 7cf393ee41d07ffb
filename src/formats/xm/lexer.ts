/**
 * Tokens of an xm/xl config, which is Python: names, numbers, strings, a few punctuation marks
 * and logical line ends. Only what a literal assignment can contain is recognised; any other
 * character stops the reader with its line and column. Nothing is ever evaluated.
 *
 * Python's rules kept here: `#` comments; a backslash at the end of a line joins it to the
 * next; inside brackets a newline does not end the statement; strings in single, double or
 * triple quotes with Python's escapes, an `r` (raw) or `u` prefix allowed.
 */
import { xmSyntaxError, type XmPosition } from './errors.js';

export type TokenKind = 'name' | 'number' | 'string' | 'op' | 'newline' | 'eof';

export interface Token {
  readonly kind: TokenKind;
  /** Names and operators as written; a string's decoded value; a number's source text. */
  readonly text: string;
  readonly at: XmPosition;
  /** Whitespace came before the token on its line (an indented statement). */
  readonly indented?: boolean;
  /** For numbers: the value. */
  readonly value?: number;
  readonly integer?: boolean;
}

/** Characters that form operators: recognised so that the parser can name what it refuses. */
const Operators = ['**=', '//=', '>>=', '<<=', '==', '!=', '<=', '>=', '+=', '-=', '*=', '/=', '%=', '&=', '|=', '^=', '**', '//', '<<', '>>', '->', ':=',
  '=', '[', ']', '(', ')', '{', '}', ',', ';', ':', '.', '+', '-', '*', '/', '%', '<', '>', '&', '|', '^', '~', '@'];

const SimpleEscapes: Readonly<Record<string, string>> = {
  '\\': '\\', '\'': '\'', '"': '"', a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v',
};

/** Longest number literal read; longer ones are surely not a memory size or a count. */
const MaxNumberLength = 64;

export class Lexer {
  private pos = 0;
  private line = 1;
  private lineStart = 0;
  /** Open brackets: newlines inside them do not end a statement. */
  private depth = 0;
  /** Nothing but whitespace since the last logical line end. */
  private atLineStart = true;
  private sawIndent = false;

  constructor(private readonly text: string, private readonly sourceName?: string) {}

  private here(): XmPosition {
    return { line: this.line, column: this.pos - this.lineStart + 1 };
  }

  private fail(at: XmPosition, message: string): never {
    throw xmSyntaxError(at, message, this.sourceName);
  }

  private newline(): void {
    this.line += 1;
    this.lineStart = this.pos;
  }

  /** Every token, ending with `eof`. */
  tokens(): Token[] {
    const out: Token[] = [];
    for (;;) {
      const t = this.next();
      // Blank lines and comment-only lines end nothing.
      if (t.kind === 'newline' && (out.length === 0 || out[out.length - 1]!.kind === 'newline')) continue;
      out.push(t);
      if (t.kind === 'eof') return out;
    }
  }

  private next(): Token {
    const text = this.text;
    for (;;) {
      if (this.pos >= text.length) {
        return { kind: 'eof', text: '', at: this.here() };
      }
      const c = text[this.pos]!;
      if (c === ' ' || c === '\t' || c === '\f') {
        if (this.atLineStart) this.sawIndent = true;
        this.pos += 1;
      } else if (c === '#') {
        while (this.pos < text.length && text[this.pos] !== '\n' && text[this.pos] !== '\r') this.pos += 1;
      } else if (c === '\r' || c === '\n') {
        const at = this.here();
        this.pos += c === '\r' && text[this.pos + 1] === '\n' ? 2 : 1;
        this.newline();
        if (this.depth === 0) {
          this.atLineStart = true;
          this.sawIndent = false;
          return { kind: 'newline', text: '\n', at };
        }
      } else if (c === '\\') {
        const at = this.here();
        const after = text[this.pos + 1];
        if (after !== '\n' && after !== '\r') this.fail(at, 'a backslash outside a string must end the line (a line continuation)');
        this.pos += after === '\r' && text[this.pos + 2] === '\n' ? 3 : 2;
        this.newline();
      } else {
        const indented = this.atLineStart && this.sawIndent && this.depth === 0;
        this.atLineStart = false;
        const token = this.token(c);
        return indented ? { ...token, indented } : token;
      }
    }
  }

  private token(c: string): Token {
    const at = this.here();
    const text = this.text;
    const prefix = /^[rRuUbBfF]{1,2}(?=['"])/.exec(text.slice(this.pos, this.pos + 3))?.[0];
    if (prefix !== undefined) return this.string(at, prefix);
    if (c === '"' || c === '\'') return this.string(at, '');
    if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(text[this.pos + 1] ?? ''))) return this.number(at);
    if (/[A-Za-z_]/.test(c)) {
      const start = this.pos;
      while (this.pos < text.length && /[A-Za-z0-9_]/.test(text[this.pos]!)) this.pos += 1;
      return { kind: 'name', text: text.slice(start, this.pos), at };
    }
    for (const op of Operators) {
      if (text.startsWith(op, this.pos)) {
        this.pos += op.length;
        if (op === '[' || op === '(' || op === '{') this.depth += 1;
        if ((op === ']' || op === ')' || op === '}') && this.depth > 0) this.depth -= 1;
        return { kind: 'op', text: op, at };
      }
    }
    const shown = c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f ? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}` : c;
    return this.fail(at, `unexpected character "${shown}"`);
  }

  private number(at: XmPosition): Token {
    const rest = this.text.slice(this.pos, this.pos + MaxNumberLength + 1);
    const m = /^(?:0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)(?:[eE][+-]?[0-9]+)?)[lLjJ]?/.exec(rest);
    const source = m?.[0] ?? '';
    if (source.length > MaxNumberLength) this.fail(at, `number literal longer than ${MaxNumberLength} characters`);
    this.pos += source.length;
    if (/[A-Za-z0-9_]/.test(this.text[this.pos] ?? '')) this.fail(at, `malformed number "${source}${this.text[this.pos]!}"`);
    if (/[jJ]$/.test(source)) this.fail(at, `complex number "${source}" is not a value an xm key takes`);
    const plain = source.replace(/[lL]$/, '').replace(/_/g, '');
    let value: number;
    let integer = true;
    if (/^0[xX]/.test(plain)) value = parseInt(plain.slice(2), 16);
    else if (/^0[oO]/.test(plain)) value = parseInt(plain.slice(2), 8);
    else if (/^0[bB]/.test(plain)) value = parseInt(plain.slice(2), 2);
    else if (/^0[0-9]+$/.test(plain) && !/^0+$/.test(plain)) {
      return this.fail(at, `number "${source}" has a leading zero: Python 2 reads it as octal, Python 3 refuses it; write ${String(parseInt(plain, 10))} or 0o${plain.replace(/^0+/, '')}`);
    } else {
      value = Number(plain);
      integer = /^[0-9]+$/.test(plain);
    }
    if (!Number.isFinite(value) || (integer && !Number.isSafeInteger(value))) this.fail(at, `number "${source}" is too large`);
    return { kind: 'number', text: source, at, value, integer };
  }

  private string(at: XmPosition, prefix: string): Token {
    const lower = prefix.toLowerCase();
    if (lower.includes('f')) this.fail(at, 'an f-string is code (it evaluates expressions): only literal values are read');
    if (lower.includes('b')) this.fail(at, 'a bytes literal is not a value an xm key takes');
    const raw = lower.includes('r');
    const text = this.text;
    this.pos += prefix.length;
    const quote = text[this.pos]!;
    const triple = text.startsWith(quote.repeat(3), this.pos);
    this.pos += triple ? 3 : 1;
    let out = '';
    for (;;) {
      if (this.pos >= text.length) {
        return this.fail(at, `unterminated ${triple ? 'triple-quoted ' : ''}string: no closing ${triple ? quote.repeat(3) : quote}`);
      }
      const c = text[this.pos]!;
      if (triple ? text.startsWith(quote.repeat(3), this.pos) : c === quote) {
        this.pos += triple ? 3 : 1;
        return { kind: 'string', text: out, at };
      }
      if (c === '\n' || c === '\r') {
        if (!triple) return this.fail(at, `unterminated string: no closing ${quote} on its line`);
        this.pos += c === '\r' && text[this.pos + 1] === '\n' ? 2 : 1;
        this.newline();
        out += '\n';
      } else if (c === '\\') {
        out += this.escape(raw);
      } else {
        out += c;
        this.pos += 1;
      }
    }
  }

  /** One backslash sequence at `pos`, decoded as Python does (an unknown one is kept as written). */
  private escape(raw: boolean): string {
    const text = this.text;
    const at = this.here();
    const e = text[this.pos + 1];
    if (e === undefined) return this.fail(at, 'unterminated string: it ends in a backslash');
    if (e === '\n' || e === '\r') {
      this.pos += e === '\r' && text[this.pos + 2] === '\n' ? 3 : 2;
      this.newline();
      return raw ? `\\${e === '\r' ? '\n' : e}` : '';
    }
    if (raw) {
      // A raw string keeps the backslash, and the escaped quote does not end the string.
      this.pos += 2;
      return `\\${e}`;
    }
    const simple = SimpleEscapes[e];
    if (simple !== undefined) {
      this.pos += 2;
      return simple;
    }
    const hex = e === 'x' ? 2 : e === 'u' ? 4 : e === 'U' ? 8 : 0;
    if (hex > 0) {
      const digits = text.slice(this.pos + 2, this.pos + 2 + hex);
      if (!new RegExp(`^[0-9a-fA-F]{${hex}}$`).test(digits)) this.fail(at, `truncated \\${e} escape: expected ${hex} hex digits`);
      const code = parseInt(digits, 16);
      if (code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) this.fail(at, `\\${e}${digits} is not a character`);
      this.pos += 2 + hex;
      return String.fromCodePoint(code);
    }
    const octal = /^[0-7]{1,3}/.exec(text.slice(this.pos + 1, this.pos + 4))?.[0];
    if (octal !== undefined) {
      this.pos += 1 + octal.length;
      return String.fromCharCode(parseInt(octal, 8));
    }
    if (e === 'N') this.fail(at, 'named \\N{...} escapes are not read');
    this.pos += 2;
    return `\\${e}`;
  }
}
