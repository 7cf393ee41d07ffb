/**
 * Guest file names in plain output, the way `ls` shows names on a terminal: a name made only
 * of printable characters is printed as it is; one holding a control character, a byte that
 * is not UTF-8, or a `/` (which no path can carry) is printed in the shell's `$'…'` quoting,
 * so it is one line, paints nothing, and pastes back into a shell as the exact name:
 * `$'evil\e]0;x\x07.txt'`, `$'a\x2fb'`, `$'caf\xe9'`. `-0` and `--json` give the exact bytes
 * instead (guestfs/fs/name-bytes.ts).
 */
import { nameBytes } from '../../guestfs/index.js';

// C0 controls, DEL, C1 controls, the surrogates that stand for invalid bytes, and `/`.
const NeedsQuoting = /[\x00-\x1f\x7f-\x9f\ud800-\udfff/]/;

function escapeChar(ch: string): string {
  switch (ch) {
    case '\x1b': return '\\e';
    case '\n': return '\\n';
    case '\r': return '\\r';
    case '\t': return '\\t';
    case '\\': return '\\\\';
    case "'": return "\\'";
    default: break;
  }
  const c = ch.charCodeAt(0);
  if (c < 0x20 || c === 0x7f || ch === '/') return `\\x${c.toString(16).padStart(2, '0')}`;
  // A C1 control is two bytes in UTF-8; each is shown.
  if (c >= 0x80 && c <= 0x9f) return [...Buffer.from(ch, 'utf8')].map((b) => `\\x${b.toString(16)}`).join('');
  return ch;
}

/** The inside of `$'…'` for one name: controls, quotes, backslashes, `/` and invalid bytes escaped. */
function escapeInside(name: string): string {
  let out = '';
  // Walk the name's bytes where it holds invalid ones, its characters otherwise.
  for (const ch of name) {
    const c = ch.charCodeAt(0);
    if (ch.length === 1 && c >= 0xdc80 && c <= 0xdcff) out += `\\x${(c - 0xdc00).toString(16)}`;
    else if (ch.length === 1 && c >= 0xd800 && c <= 0xdfff) out += [...nameBytes(ch)].map((b) => `\\x${b.toString(16)}`).join('');
    else out += escapeChar(ch);
  }
  return out;
}

/** One name for a terminal: as it is, or `$'…'` quoted when it must be. */
export function quoteName(name: string): string {
  return NeedsQuoting.test(name) ? `$'${escapeInside(name)}'` : name;
}

/**
 * A path made of `names` (components, any of which may contain `/`) for a terminal: joined
 * with `/` as it is, or `$'…'` quoted as a whole with a `/` inside a name shown as `\x2f`.
 */
export function quotePath(names: readonly string[], absolute: boolean): string {
  const lead = absolute ? '/' : '';
  if (!names.some((n) => NeedsQuoting.test(n))) return lead + names.join('/');
  return `$'${lead}${names.map(escapeInside).join('/')}'`;
}
