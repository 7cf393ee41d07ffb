/**
 * GRUB 2's grub.cfg as a boot menu: `menuentry` and nested `submenu` blocks, the `linux` and
 * `initrd` commands of each entry, `set default` (an index, a title or an id, with `>`
 * between submenu levels) and `set timeout`. Simple `set NAME=VALUE` (and `NAME=VALUE`)
 * variables are substituted in `$NAME` and `${NAME}`; unset ones expand to nothing, as in
 * GRUB. Everything else (`search`, `insmod`, conditions, functions) is ignored: both branches
 * of an `if` run in order, so the last assignment wins. Entry bodies are expanded with the
 * variables as they stand at the end of the file, as GRUB runs them after the whole file.
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

interface GrubState {
  readonly vars: Variables;
  readonly warnings: string[];
  entryCount: number;
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
  for (const stmt of statements) {
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

export function parseGrubConfig(text: string, source = 'grub.cfg'): BootMenu {
  checkConfigSize(text, source);
  const statements = parseScript(text, source);
  const ex = new Expander(source);
  const state: GrubState = { vars: new Map(), warnings: [], entryCount: 0 };
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
  return {
    kind: 'grub', entries, ...(defaultIndex === undefined ? {} : { defaultIndex }),
    ...(state.vars.has('timeout') && Number.isFinite(timeout) ? { timeout } : {}),
    warnings: state.warnings,
  };
}

function samePath(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
