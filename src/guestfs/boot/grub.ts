/**
 * GRUB 2's grub.cfg as a boot menu: `menuentry` and nested `submenu` blocks, the `linux` and
 * `initrd` commands of each entry, `set default` (an index, a title or an id, with `>`
 * between submenu levels) and `set timeout`. Simple `set NAME=VALUE` (and `NAME=VALUE`)
 * variables are substituted in `$NAME` and `${NAME}`; unset ones expand to nothing, as in
 * GRUB. `config_directory` and `prefix` start as GRUB sets them: the directory the
 * configuration was read from. An `if`/`elif` whose condition is a `[ ... ]` test over
 * known values (`-f`/`-e`/`-d` against the guest filesystem, `-z`, `-n`, `=`, `!=`, `-a`,
 * `-o`, `!`) takes the branch GRUB would; a condition naming a variable the file never sets
 * (`$grub_platform`) is not known, and then every branch runs in order, so the last
 * assignment wins. Everything else (`search`, `insmod`, functions) is ignored. Entry bodies
 * are expanded with the variables as they stand at the end of the file, as GRUB runs them
 * after the whole file.
 */
import { parseScript, type Statement, type Word } from './grub-script.js';
import {
  MAX_ENTRIES, MAX_WORD_BYTES, checkConfigSize, checkInitrdCount, configError,
  type BootMenu, type MenuEntry,
} from './types.js';

type Variables = Map<string, string>;

type MenuItem =
  | { readonly type: 'entry'; readonly title: string; readonly id?: string; readonly body: readonly Statement[] }
  | { readonly type: 'submenu'; readonly title: string; readonly id?: string; readonly items: MenuItem[] };

const KERNEL_COMMANDS = new Set(['linux', 'linux16', 'linuxefi', 'kernel']);
const INITRD_COMMANDS = new Set(['initrd', 'initrd16', 'initrdefi']);
/** Keywords that may lead a command in an if/while/for construct; the command follows them. */
const LEADING_KEYWORDS = new Set(['then', 'else', 'do', '!']);
/** Commands whose arguments are conditions or loop heads: nothing to run for the menu. */
const CONDITION_COMMANDS = new Set(['if', 'elif', 'while', 'until', 'for', 'fi', 'done']);
/** menuentry/submenu options that take a value. */
const VALUE_OPTIONS = new Set(['--class', '--users', '--hotkey', '--id', '--source']);
const ASSIGNMENT = /^([A-Za-z_][A-Za-z0-9_]*)=/s;
/** `(hd0,msdos1)/vmlinuz` and `($root)/vmlinuz` name a device first: the path is what follows. */
const DEVICE_PREFIX = /^\([^)]*\)/;

/** Total bytes all expansions of one file may produce: repeated `$big` words stay bounded. */
const MAX_EXPANDED_BYTES = 16 * 1024 * 1024;

class Expander {
  private produced = 0;

  constructor(readonly source: string) {}

  /** The word's value, or undefined when it was unquoted and expanded to nothing (GRUB drops it). */
  expand(word: Word, vars: Variables, line: number): string | undefined {
    let out = '';
    let quoted = false;
    for (const seg of word) {
      if (seg.quoted) quoted = true;
      out += 'text' in seg ? seg.text : (vars.get(seg.variable) ?? '');
      if (out.length > MAX_WORD_BYTES) {
        throw configError(this.source, `line ${line}: a word expands to more than ${MAX_WORD_BYTES} bytes`, { line });
      }
    }
    this.produced += out.length;
    if (this.produced > MAX_EXPANDED_BYTES) {
      throw configError(this.source, `variable expansion produces more than ${MAX_EXPANDED_BYTES} bytes`, { line });
    }
    return out === '' && !quoted ? undefined : out;
  }

  expandAll(words: readonly Word[], vars: Variables, line: number): string[] {
    const out: string[] = [];
    for (const w of words) {
      const v = this.expand(w, vars, line);
      if (v !== undefined) out.push(v);
    }
    return out;
  }
}

/** What GRUB knows when it reads the file: where it was read from, and what its file tests find. */
export interface GrubEnvironment {
  /** The configuration's directory inside its filesystem (`/boot/grub`): `$config_directory` and `$prefix`. */
  readonly configDirectory?: string;
  /** Answers to the file tests (`-f:/boot/grub/custom.cfg` -> false), as the caller looked them up. */
  readonly fileTests?: ReadonlyMap<string, boolean>;
}

interface GrubState {
  readonly vars: Variables;
  readonly warnings: string[];
  entryCount: number;
  readonly env: GrubEnvironment;
  /** File tests met that `env.fileTests` does not answer (`-f:/path`). */
  readonly pendingTests: Set<string>;
}

/** One `if` ... `fi`: whether the current branch runs, and whether an earlier one surely did. */
interface Conditional { readonly parentActive: boolean; active: boolean; taken: boolean }

const FILE_TESTS = new Set(['-f', '-e', '-d']);

/**
 * The value of a `[ ... ]` (or `test ...`) condition: true, false, or undefined when it is
 * not a test this reader evaluates or depends on a variable the file never set.
 */
function evaluateCondition(words: readonly Word[], state: GrubState, ex: Expander, line: number): boolean | undefined {
  for (const w of words) {
    for (const seg of w) if ('variable' in seg && !state.vars.has(seg.variable)) return undefined;
  }
  // Keep empty quoted words ("" is an operand); an unquoted empty expansion is dropped, as GRUB does.
  const args = ex.expandAll(words, state.vars, line);
  if (args[0] === '[') {
    if (args[args.length - 1] !== ']') return undefined;
    args.splice(args.length - 1, 1);
  } else if (args[0] !== 'test') {
    return undefined;
  }
  const terms = args.slice(1);
  const any = splitOn(terms, '-o').map((conj) => {
    const all = splitOn(conj, '-a').map((t) => primary(t, state));
    return all.includes(false) ? false : all.includes(undefined) ? undefined : true;
  });
  return any.includes(true) ? true : any.includes(undefined) ? undefined : false;
}

function splitOn(terms: readonly string[], op: string): string[][] {
  const out: string[][] = [[]];
  for (const t of terms) {
    if (t === op) out.push([]);
    else out[out.length - 1]!.push(t);
  }
  return out;
}

function primary(terms: readonly string[], state: GrubState): boolean | undefined {
  if (terms[0] === '!') {
    const v = primary(terms.slice(1), state);
    return v === undefined ? undefined : !v;
  }
  if (terms.length === 1) return terms[0] !== '';
  if (terms.length === 2 && (terms[0] === '-z' || terms[0] === '-n')) return (terms[1] === '') === (terms[0] === '-z');
  if (terms.length === 2 && FILE_TESTS.has(terms[0]!)) {
    const key = `${terms[0]}:${stripDevice(terms[1]!)}`;
    const known = state.env.fileTests?.get(key);
    if (known === undefined) state.pendingTests.add(key);
    return known;
  }
  if (terms.length === 3 && (terms[1] === '=' || terms[1] === '==')) return terms[0] === terms[2];
  if (terms.length === 3 && terms[1] === '!=') return terms[0] !== terms[2];
  return undefined;
}

/**
 * Tracks `if`/`elif`/`else`/`fi` in a list of statements; says whether a statement runs.
 * A branch whose condition is not known runs and leaves the later branches to run too.
 */
class Conditions {
  private readonly stack: Conditional[] = [];

  constructor(private readonly state: GrubState, private readonly ex: Expander) {}

  private get active(): boolean {
    return this.stack.length === 0 || this.stack[this.stack.length - 1]!.active;
  }

  /** Whether `stmt` runs; `if`, `elif`, `else` and `fi` update the state and run the command after them. */
  runs(stmt: Statement): boolean {
    const first = stmt.words[0];
    const keyword = first?.length === 1 && 'text' in first[0]! && !first[0].quoted ? first[0].text : undefined;
    if (keyword === 'if') {
      const parentActive = this.active;
      const value = parentActive ? evaluateCondition(stmt.words.slice(1), this.state, this.ex, stmt.line) : false;
      this.stack.push({ parentActive, active: parentActive && value !== false, taken: value === true });
      return false;
    }
    const top = this.stack[this.stack.length - 1];
    if (keyword === 'elif' && top !== undefined) {
      const value = top.parentActive && !top.taken ? evaluateCondition(stmt.words.slice(1), this.state, this.ex, stmt.line) : false;
      top.active = top.parentActive && !top.taken && value !== false;
      top.taken ||= value === true;
      return false;
    }
    if (keyword === 'else' && top !== undefined) {
      top.active = top.parentActive && !top.taken;
      return top.active;
    }
    if (keyword === 'fi') {
      this.stack.pop();
      return false;
    }
    return this.active;
  }
}

/** Title and id of `menuentry TITLE [--opt value]... [ID]` or `submenu ...`. */
function menuHead(args: readonly string[]): { title: string; id?: string } {
  let title: string | undefined;
  let id: string | undefined;
  let positionalId: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq < 0 ? a : a.slice(0, eq);
      const value = eq < 0 ? (VALUE_OPTIONS.has(name) ? args[++i] : undefined) : a.slice(eq + 1);
      if (name === '--id' && value !== undefined) id = value;
    } else if (title === undefined) {
      title = a;
    } else {
      // Debian's grub.cfg passes the id as a plain argument when menuentry_id_option is empty.
      positionalId ??= a;
    }
  }
  const chosenId = id ?? positionalId;
  return { title: title ?? '', ...(chosenId === undefined ? {} : { id: chosenId }) };
}

function commandWords(stmt: Statement): readonly Word[] {
  let words = stmt.words;
  while (words.length > 0) {
    const first = words[0]!;
    const single = first.length === 1 ? first[0]! : undefined;
    if (single !== undefined && 'text' in single && !single.quoted && LEADING_KEYWORDS.has(single.text)) words = words.slice(1);
    else break;
  }
  return words;
}

/** Runs top-level (or submenu) statements: assignments, menu definitions; collects items. */
function runMenu(statements: readonly Statement[], state: GrubState, ex: Expander, items: MenuItem[]): void {
  const conditions = new Conditions(state, ex);
  for (const stmt of statements) {
    if (!conditions.runs(stmt)) continue;
    const words = commandWords(stmt);
    const args = ex.expandAll(words, state.vars, stmt.line);
    const command = args[0];
    if (command === undefined) continue;
    if (stmt.body !== undefined) {
      if (command === 'menuentry' || command === 'submenu') {
        if (++state.entryCount > MAX_ENTRIES) throw configError(ex.source, `more than ${MAX_ENTRIES} menu entries`);
        const head = menuHead(args.slice(1));
        if (command === 'menuentry') {
          items.push({ type: 'entry', ...head, body: stmt.body });
        } else {
          const sub: MenuItem[] = [];
          runMenu(stmt.body, state, ex, sub);
          items.push({ type: 'submenu', ...head, items: sub });
        }
      } else if (command !== 'function') {
        // Any other block (a malformed construct): its commands still run in order.
        runMenu(stmt.body, state, ex, items);
      }
      continue;
    }
    runCommand(args, state);
  }
}

/** Assignments and the commands that only produce warnings. */
function runCommand(args: readonly string[], state: GrubState): void {
  const command = args[0]!;
  if (CONDITION_COMMANDS.has(command)) return;
  const assignment = command === 'set' ? args[1] : command;
  if (assignment !== undefined) {
    const m = ASSIGNMENT.exec(assignment);
    if (m !== null && (command === 'set' || args.length === 1)) {
      state.vars.set(m[1]!, assignment.slice(m[0].length));
      return;
    }
  }
  if (command === 'blscfg') state.warnings.push('blscfg: the entries of /loader/entries are listed as the BLS configuration');
  else if (command === 'source' || command === 'configfile') state.warnings.push(`${command} ${args[1] ?? ''}: not followed`);
}

interface EntryFiles { kernel?: string; initrds: string[]; cmdline: string }

function stripDevice(path: string): string {
  return path.replace(DEVICE_PREFIX, '');
}

/** What booting an entry would load: its last `linux` and `initrd` commands. */
function entryFiles(body: readonly Statement[], globals: Variables, ex: Expander): EntryFiles {
  const vars = new Map(globals);
  const files: EntryFiles = { initrds: [], cmdline: '' };
  const visit = (statements: readonly Statement[]): void => {
    for (const stmt of statements) {
      const args = ex.expandAll(commandWords(stmt), vars, stmt.line);
      const command = args[0];
      if (command === undefined) continue;
      if (stmt.body !== undefined) {
        if (command !== 'function' && command !== 'menuentry' && command !== 'submenu') visit(stmt.body);
        continue;
      }
      if (KERNEL_COMMANDS.has(command) && args[1] !== undefined) {
        files.kernel = stripDevice(args[1]);
        files.cmdline = args.slice(2).join(' ');
        if (files.cmdline.length > MAX_WORD_BYTES) throw configError(ex.source, `line ${stmt.line}: command line longer than ${MAX_WORD_BYTES} bytes`);
      } else if (INITRD_COMMANDS.has(command)) {
        files.initrds = args.slice(1).map(stripDevice);
        checkInitrdCount(files.initrds, ex.source);
      } else {
        const m = ASSIGNMENT.exec(command === 'set' ? (args[1] ?? '') : command);
        if (m !== null) vars.set(m[1]!, (command === 'set' ? args[1]! : command).slice(m[0].length));
      }
    }
  };
  visit(body);
  return files;
}

/** Resolves `set default` ("2", "Title", "id", "1>0", ...) to a path of indices through the menu. */
function resolveDefault(value: string, items: readonly MenuItem[]): number[] | undefined {
  const path: number[] = [];
  let level: readonly MenuItem[] = items;
  for (const part of value.split('>')) {
    let index = /^[0-9]+$/.test(part) ? Number(part) : level.findIndex((it) => it.title === part || it.id === part);
    if (index < 0 || index >= level.length) {
      // GRUB falls back to the first item of a submenu; an empty level has none.
      if (path.length === 0 || level.length === 0) return undefined;
      index = 0;
    }
    path.push(index);
    const item = level[index]!;
    if (item.type === 'entry') return path;
    level = item.items;
  }
  // A path ending at a submenu boots the submenu's first entry, as GRUB opens it.
  while (level.length > 0) {
    path.push(0);
    const first = level[0]!;
    if (first.type === 'entry') return path;
    level = first.items;
  }
  return undefined;
}

export function parseGrubConfig(text: string, source = 'grub.cfg', env: GrubEnvironment = {}): BootMenu {
  return readGrubConfig(text, source, env).menu;
}

/**
 * The menu, and the file tests the configuration makes that `env.fileTests` did not answer
 * (`-f:/boot/grub/custom.cfg`): a caller that can look at the guest filesystem answers them
 * and reads the configuration again.
 */
export function readGrubConfig(text: string, source: string, env: GrubEnvironment): { menu: BootMenu; pendingFileTests: string[] } {
  checkConfigSize(text, source);
  const statements = parseScript(text, source);
  const ex = new Expander(source);
  const vars: Variables = new Map();
  if (env.configDirectory !== undefined) {
    vars.set('config_directory', env.configDirectory);
    vars.set('prefix', env.configDirectory);
  }
  const state: GrubState = { vars, warnings: [], entryCount: 0, env, pendingTests: new Set() };
  const items: MenuItem[] = [];
  runMenu(statements, state, ex, items);

  const entries: MenuEntry[] = [];
  const flatten = (level: readonly MenuItem[], prefix: number[], titles: string[]): void => {
    level.forEach((item, i) => {
      const path = [...prefix, i];
      if (item.type === 'submenu') {
        flatten(item.items, path, [...titles, item.title]);
        return;
      }
      const files = entryFiles(item.body, state.vars, ex);
      entries.push({
        title: [...titles, item.title].join('>'),
        ...(item.id === undefined ? {} : { id: item.id }),
        ...(files.kernel === undefined ? {} : { kernel: files.kernel }),
        initrds: files.initrds, cmdline: files.cmdline, menuPath: path,
      });
    });
  };
  flatten(items, [], []);

  const rawDefault = state.vars.get('default') ?? '';
  let defaultIndex: number | undefined = entries.length > 0 ? 0 : undefined;
  if (rawDefault === 'saved' || (rawDefault === '' && /saved_entry/.test(text))) {
    state.warnings.push('default: the saved entry (grubenv) is not read; the first entry is the default');
  } else if (rawDefault !== '' && entries.length > 0) {
    const path = resolveDefault(rawDefault, items);
    const found = path === undefined ? -1 : entries.findIndex((e) => samePath(e.menuPath!, path));
    if (found < 0) state.warnings.push(`default "${rawDefault}" names no entry; the first entry is the default`);
    else defaultIndex = found;
  }
  const timeout = Number(state.vars.get('timeout'));
  const menu: BootMenu = {
    kind: 'grub', entries, ...(defaultIndex === undefined ? {} : { defaultIndex }),
    ...(state.vars.has('timeout') && Number.isFinite(timeout) ? { timeout } : {}),
    warnings: state.warnings,
  };
  return { menu, pendingFileTests: [...state.pendingTests] };
}

function samePath(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
