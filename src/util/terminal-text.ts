/**
 * Guest text on the host's terminal. What a guest wrote (its console, the names and contents of
 * files in its image, its boot menu titles) may carry escape sequences that a terminal obeys:
 * setting the title, writing the clipboard (OSC 52), moving the cursor over earlier output. In
 * human-readable output every control character becomes visible text instead: `\e` for ESC,
 * `\r`, `\xHH` for the other C0 and C1 controls and DEL. JSON output needs none of this (JSON
 * escapes control characters itself), and the interactive console passes bytes through on
 * purpose: it is the guest's terminal.
 */
import { StringDecoder } from 'node:string_decoder';
import { Transform } from 'node:stream';

export interface EscapeOptions {
  /** Keep newlines (multi-line text such as a console log); otherwise `\n` too (one name per line). */
  keepNewlines?: boolean;
}

// C0 controls, DEL and C1 controls; tab stays.
const Controls = /[\x00-\x08\x0a-\x1f\x7f-\x9f]/g;

function visible(ch: string): string {
  switch (ch) {
    case '\x1b': return '\\e';
    case '\r': return '\\r';
    case '\n': return '\\n';
    default: return `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`;
  }
}

/** `text` with every control character a terminal would act on shown as an escape. */
export function escapeForTerminal(text: string, opts: EscapeOptions = {}): string {
  // A console's CRLF line ends are line ends, not cursor moves.
  const input = opts.keepNewlines === true ? text.replace(/\r\n/g, '\n') : text;
  return input.replace(Controls, (ch) => (ch === '\n' && opts.keepNewlines === true ? ch : visible(ch)));
}

/**
 * A stream that escapes what passes through it (newlines kept), decoding UTF-8 across chunk
 * boundaries: for guest file contents written to a terminal.
 */
export function terminalEscaper(): Transform {
  const decoder = new StringDecoder('utf8');
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      done(null, escapeForTerminal(decoder.write(chunk), { keepNewlines: true }));
    },
    flush(done) {
      done(null, escapeForTerminal(decoder.end(), { keepNewlines: true }));
    },
  });
}
