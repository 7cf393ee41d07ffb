/**
 * The typed errors of the xm reader: every one names the line and column it is about. Text
 * quoted from the file has its control characters shown as escapes: a config may come from
 * anywhere, and its messages end up on a terminal.
 */
import { VirtkitError } from '../../util/errors.js';
import { escapeForTerminal } from '../../util/terminal-text.js';

/** 1-based, as editors count. */
export interface XmPosition {
  readonly line: number;
  readonly column: number;
}

function where(at: XmPosition, sourceName: string | undefined): string {
  return `${sourceName === undefined ? '' : `${sourceName}: `}line ${at.line}, column ${at.column}`;
}

/** The file is not the literal subset of Python the reader accepts. */
export function xmSyntaxError(at: XmPosition, message: string, sourceName?: string): VirtkitError {
  return new VirtkitError('definition.invalid', `${where(at, sourceName)}: ${escapeForTerminal(message)}`, {
    ...at, rule: 'xm-syntax', ...(sourceName === undefined ? {} : { source: sourceName }),
  });
}

/** A value that is well-formed Python but not what its key takes (`memory = "lots"`). */
export function xmValueError(at: XmPosition, key: string, message: string, sourceName?: string): VirtkitError {
  return new VirtkitError('definition.invalid', `${where(at, sourceName)}: ${key}: ${escapeForTerminal(message)}`, {
    ...at, path: key, rule: 'xm-value', ...(sourceName === undefined ? {} : { source: sourceName }),
  });
}
