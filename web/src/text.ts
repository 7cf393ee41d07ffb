/**
 * Guest text shown on the page: control characters (escape sequences a guest printed) are
 * made visible instead of passed on, as the CLI does for a terminal (src/util/terminal-text.ts).
 * The DOM already escapes markup; this keeps the log readable.
 */
export function terminalSafe(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\r\n/g, '\n').replace(/[\x00-\x08\x0b-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
