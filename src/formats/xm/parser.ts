/**
 * The statements of an xm/xl config: `name = literal`, one per logical line (or separated by
 * `;`). A literal is a string (adjacent strings join, as in Python), a number (a leading sign
 * allowed), True, False, None, or a list or tuple of literals. Everything else Python could
 * say (imports, calls, loops, arithmetic, names of other variables) is refused with its line
 * and column: the file is read, never run.
 */
import { xmSyntaxError, type XmPosition } from './errors.js';
import { Lexer, type Token } from './lexer.js';

export type XmValue =
  | { readonly kind: 'string'; readonly value: string; readonly at: XmPosition }
  | { readonly kind: 'number'; readonly value: number; readonly integer: boolean; readonly at: XmPosition }
  | { readonly kind: 'bool'; readonly value: boolean; readonly at: XmPosition }
  | { readonly kind: 'none'; readonly at: XmPosition }
  | { readonly kind: 'list'; readonly items: readonly XmValue[]; readonly tuple: boolean; readonly at: XmPosition };

export interface XmAssignment {
  readonly name: string;
  readonly value: XmValue;
  readonly at: XmPosition;
}

/** Bounds: a config is a page of text; these only stop a hostile one from costing much. */
export const MaxXmBytes = 1024 * 1024;
export const MaxNesting = 16;

/** Python statements that may begin a line: each is code, never a setting. */
const StatementKeywords = new Set([
  'import', 'from', 'for', 'while', 'if', 'elif', 'else', 'def', 'class', 'lambda', 'with', 'try', 'except', 'finally',
  'exec', 'print', 'del', 'global', 'nonlocal', 'assert', 'return', 'yield', 'raise', 'pass', 'break', 'continue',
  'async', 'await', 'match', 'and', 'or', 'not', 'in', 'is',
]);
const Literals: Readonly<Record<string, XmValue['kind']>> = { True: 'bool', False: 'bool', None: 'none' };

const Subset = 'only `name = value` assignments of literal strings, numbers, booleans, lists and tuples are read';

export class Parser {
  private i = 0;
  private readonly tokens: Token[];

  constructor(text: string, private readonly sourceName?: string) {
    if (text.length > MaxXmBytes) {
      throw xmSyntaxError({ line: 1, column: 1 }, `the file is larger than ${MaxXmBytes} characters, too large for a config`, sourceName);
    }
    // A UTF-8 byte order mark is allowed before Python source.
    this.tokens = new Lexer(text.replace(/^\uFEFF/, ''), sourceName).tokens();
  }

  private peek(offset = 0): Token {
    return this.tokens[Math.min(this.i + offset, this.tokens.length - 1)]!;
  }

  private take(): Token {
    const t = this.peek();
    if (this.i < this.tokens.length - 1) this.i += 1;
    return t;
  }

  private fail(at: XmPosition, message: string): never {
    throw xmSyntaxError(at, message, this.sourceName);
  }

  private isOp(t: Token, op: string): boolean {
    return t.kind === 'op' && t.text === op;
  }

  /** Every assignment, in file order. */
  assignments(): XmAssignment[] {
    const out: XmAssignment[] = [];
    for (;;) {
      const t = this.peek();
      if (t.kind === 'eof') return out;
      if (t.kind === 'newline' || this.isOp(t, ';')) {
        this.take();
        continue;
      }
      out.push(this.assignment());
      const end = this.peek();
      if (end.kind !== 'newline' && end.kind !== 'eof' && !this.isOp(end, ';')) this.refuseAfterValue(end);
    }
  }

  private assignment(): XmAssignment {
    const target = this.take();
    if (target.indented === true) this.fail(target.at, `unexpected indent (Python refuses it too): ${Subset}`);
    if (target.kind !== 'name') {
      this.fail(target.at, `expected a setting name, got ${describe(target)}: ${Subset}`);
    }
    if (StatementKeywords.has(target.text)) {
      this.fail(target.at, `\`${target.text}\` is Python code: an xm file is read, never run; ${Subset}`);
    }
    if (Literals[target.text] !== undefined) this.fail(target.at, `cannot assign to ${target.text}`);
    const op = this.take();
    if (!this.isOp(op, '=')) {
      if (this.isOp(op, '(')) this.fail(target.at, `a call of ${target.text}(...) is code: ${Subset}`);
      if (this.isOp(op, '.') || this.isOp(op, '[')) this.fail(op.at, `${this.isOp(op, '.') ? 'attribute access' : 'indexing'} on ${target.text} is code: ${Subset}`);
      if (op.kind === 'op' && op.text.endsWith('=') && op.text.length > 1) this.fail(op.at, `augmented assignment "${op.text}" is code: ${Subset}`);
      this.fail(op.at, `expected "=" after ${target.text}, got ${describe(op)}`);
    }
    const value = this.value(0);
    if (this.isOp(this.peek(), '=')) this.fail(this.peek().at, `chained assignment is code: ${Subset}`);
    return { name: target.text, value, at: target.at };
  }

  private value(depth: number): XmValue {
    if (depth > MaxNesting) this.fail(this.peek().at, `lists nested deeper than ${MaxNesting} levels`);
    const t = this.take();
    if (t.kind === 'string') {
      let value = t.text;
      // "a" "b" is one string in Python.
      while (this.peek().kind === 'string') value += this.take().text;
      return { kind: 'string', value, at: t.at };
    }
    if (t.kind === 'number') return { kind: 'number', value: t.value ?? 0, integer: t.integer ?? true, at: t.at };
    if (this.isOp(t, '-') || this.isOp(t, '+')) {
      const n = this.take();
      if (n.kind !== 'number') this.fail(t.at, `"${t.text}" before ${describe(n)} is an expression: ${Subset}`);
      const value = t.text === '-' ? -(n.value ?? 0) : (n.value ?? 0);
      return { kind: 'number', value: Object.is(value, -0) ? 0 : value, integer: n.integer ?? true, at: t.at };
    }
    if (t.kind === 'name') {
      const literal = Literals[t.text];
      if (literal === 'bool') return { kind: 'bool', value: t.text === 'True', at: t.at };
      if (literal === 'none') return { kind: 'none', at: t.at };
      if (this.isOp(this.peek(), '(')) this.fail(t.at, `a call of ${t.text}(...) is code: ${Subset}`);
      if (this.isOp(this.peek(), '.')) this.fail(t.at, `attribute access on ${t.text} is code: ${Subset}`);
      if (StatementKeywords.has(t.text)) this.fail(t.at, `\`${t.text}\` is Python code: ${Subset}`);
      this.fail(t.at, `\`${t.text}\` names another variable, which is code (the file is never run): ${Subset}`);
    }
    if (this.isOp(t, '[') || this.isOp(t, '(')) return this.sequence(t, depth);
    if (this.isOp(t, '{')) this.fail(t.at, `a dict or set is not a value an xm key takes: ${Subset}`);
    return this.fail(t.at, `expected a value, got ${describe(t)}`);
  }

  private sequence(open: Token, depth: number): XmValue {
    const tuple = open.text === '(';
    const close = tuple ? ')' : ']';
    const items: XmValue[] = [];
    let sawComma = false;
    for (;;) {
      const t = this.peek();
      if (this.isOp(t, close)) {
        this.take();
        // (x) is x in Python; (x,) and () are tuples.
        if (tuple && items.length === 1 && !sawComma) return items[0]!;
        return { kind: 'list', items, tuple, at: open.at };
      }
      if (t.kind === 'eof') this.fail(open.at, `"${open.text}" is never closed`);
      // `name =` inside brackets: the bracket was left open and the next setting began.
      if (t.kind === 'name' && this.isOp(this.peek(1), '=')) {
        this.fail(open.at, `"${open.text}" is never closed (line ${t.at.line} starts the next setting, ${t.text})`);
      }
      items.push(this.value(depth + 1));
      const after = this.peek();
      if (this.isOp(after, ',')) {
        this.take();
        sawComma = true;
      } else if (!this.isOp(after, close)) {
        if (after.kind === 'op' && (after.text === ']' || after.text === ')' || after.text === '}')) {
          this.fail(after.at, `"${after.text}" does not close "${open.text}" (line ${open.at.line}, column ${open.at.column})`);
        }
        if (after.kind === 'eof') this.fail(open.at, `"${open.text}" is never closed`);
        this.refuseAfterValue(after);
      }
    }
  }

  /** What follows a complete value where a comma, a bracket or the line's end belongs. */
  private refuseAfterValue(t: Token): never {
    if (t.kind === 'op') {
      if (t.text === '(') this.fail(t.at, `a call is code: ${Subset}`);
      if (t.text === '.') this.fail(t.at, `attribute access is code: ${Subset}`);
      if (t.text === '[') this.fail(t.at, `indexing is code: ${Subset}`);
      if (t.text === '=') this.fail(t.at, `chained assignment is code: ${Subset}`);
      if (t.text !== ',' && t.text !== ']' && t.text !== ')' && t.text !== '}' && t.text !== ':') {
        this.fail(t.at, `operator "${t.text}" makes an expression, which is code: ${Subset}`);
      }
    }
    if (t.kind === 'name' && StatementKeywords.has(t.text)) this.fail(t.at, `\`${t.text}\` makes an expression, which is code: ${Subset}`);
    return this.fail(t.at, `unexpected ${describe(t)} after a value`);
  }
}

function describe(t: Token): string {
  switch (t.kind) {
    case 'eof': return 'the end of the file';
    case 'newline': return 'the end of the line';
    case 'string': return 'a string';
    case 'number': return `number ${t.text}`;
    case 'name': return `name \`${t.text}\``;
    case 'op': return `"${t.text}"`;
  }
}

/** Parse a config's text into its assignments. @throws VirtkitError('definition.invalid') with line and column. */
export function parseXm(text: string, sourceName?: string): XmAssignment[] {
  return new Parser(text, sourceName).assignments();
}
