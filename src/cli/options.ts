/**
 * Numeric command-line options: one parser per kind of number, shared by every verb, so
 * `--timeout` means the same thing (and fails the same way) on `shutdown`, `event`,
 * `host-shutdown` and `run`. A bad value is `argument.invalid` naming the option (exit 5),
 * never commander's generic message or a stack trace.
 */
import { Option } from 'commander';
import { VirtkitError } from '../util/errors.js';

/** What the API accepts for a timeout: whole or fractional seconds, up to a day. */
export const TimeoutSeconds = { min: 0, max: 86_400 } as const;

const Decimal = /^\d+(\.\d+)?$/;
const Whole = /^\d+$/;

function invalid(option: string, text: string, expected: string): VirtkitError {
  return new VirtkitError('argument.invalid', `${option}: must be ${expected}, got "${text}"`, { option, value: text });
}

/** "30", "1.5": seconds within TimeoutSeconds. */
export function parseTimeoutSeconds(option: string, text: string): number {
  const value = Number(text);
  if (!Decimal.test(text.trim()) || !Number.isFinite(value) || value < TimeoutSeconds.min || value > TimeoutSeconds.max) {
    throw invalid(option, text, `a number of seconds from ${TimeoutSeconds.min} to ${TimeoutSeconds.max}`);
  }
  return value;
}

/** A whole number within [min, max]. */
export function parseWholeNumber(option: string, text: string, range: { min: number; max: number }): number {
  const value = Number(text);
  if (!Whole.test(text.trim()) || !Number.isSafeInteger(value) || value < range.min || value > range.max) {
    const expected = range.max === Number.MAX_SAFE_INTEGER ? `a whole number of at least ${range.min}` : `a whole number from ${range.min} to ${range.max}`;
    throw invalid(option, text, expected);
  }
  return value;
}

/** The long flag of an option's flags: `-p, --port <n>` -> `--port`. */
function longFlag(flags: string): string {
  return /--[a-z0-9-]+/.exec(flags)?.[0] ?? flags.split(/[ ,]/)[0] ?? flags;
}

/**
 * `--timeout <seconds>` (or other flags) with the shared parser; the help text states the
 * unit and the bounds after the command's own description.
 */
export function timeoutOption(description: string, flags = '--timeout <seconds>'): Option {
  const name = longFlag(flags);
  return new Option(flags, `${description} (seconds, ${TimeoutSeconds.min} to ${TimeoutSeconds.max})`)
    .argParser((text: string) => parseTimeoutSeconds(name, text));
}

/** A whole-number option with its bounds in the help text. */
export function wholeNumberOption(flags: string, description: string, range: { min: number; max: number }): Option {
  const name = longFlag(flags);
  const bounds = range.max === Number.MAX_SAFE_INTEGER ? `at least ${range.min}` : `${range.min} to ${range.max}`;
  return new Option(flags, `${description} (${bounds})`).argParser((text: string) => parseWholeNumber(name, text, range));
}
