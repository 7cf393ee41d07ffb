/**
 * The audited monitor passthrough (`virtkit qemu-monitor-command`). QMP reports errors as
 * errors; HMP (through human-monitor-command) answers every command with text, errors
 * included, so a failed HMP command has to be recognised from its text, or callers would
 * report success for `unknown command: 'bogus'`.
 */
import { VirtkitError } from '../../util/errors.js';
import type { QmpClient } from '../qmp/client.js';

export type MonitorCommand = { qmp: { execute: string; arguments?: Record<string, unknown> } } | { hmp: string };

/**
 * How QEMU 7.2's HMP words a failure, on the first line of its answer: the command is unknown,
 * a QMP-backed command failed (`Error: ...`, hmp_handle_error), a device lookup failed, or the
 * arguments did not parse (then a `Try "help CMD" ...` line follows).
 */
const HMP_ERROR_FIRST_LINE: readonly RegExp[] = [
  /^unknown command: /,
  /^Error: /,
  /^Could not /,
  /^Device '.*' not found$/,
  /^Path '.*' could not be resolved/,
  /^unknown event /,
  /^invalid parameter: /,
  /^Invalid boot device /,
];
const HMP_USAGE_HINT = /^Try "help [^"]*" for more information$/;

/** QEMU's error text when an HMP answer is an error; undefined for a normal answer. */
export function hmpErrorOf(output: string): string | undefined {
  const lines = output.split(/\r?\n/).map((l) => l.trimEnd()).filter((l) => l !== '');
  const first = lines[0];
  if (first === undefined) return undefined;
  if (HMP_ERROR_FIRST_LINE.some((re) => re.test(first)) || lines.some((l) => HMP_USAGE_HINT.test(l))) {
    return lines.filter((l) => !HMP_USAGE_HINT.test(l)).join('; ') || first;
  }
  return undefined;
}

/**
 * Runs a raw QMP command (its `return`, untyped) or an HMP command line (its text). An HMP
 * answer that is an error throws 'qmp.command-failed' with QEMU's text, as a QMP error does.
 */
export async function monitorCommand(qmp: QmpClient, command: MonitorCommand): Promise<unknown> {
  if ('qmp' in command) return qmp.executeUntyped(command.qmp.execute, command.qmp.arguments);
  const output = await qmp.hmp(command.hmp);
  const error = hmpErrorOf(output);
  if (error !== undefined) {
    throw new VirtkitError('qmp.command-failed', `HMP ${command.hmp}: ${error}`,
      { command: 'human-monitor-command', hmp: command.hmp, class: 'GenericError', desc: error });
  }
  return output;
}
