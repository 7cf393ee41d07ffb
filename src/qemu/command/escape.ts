/**
 * Values inside QEMU's key=value options (-chardev, -machine, -vnc, -name ...). QEMU's option
 * parser splits on commas and reads ",," as a literal comma, so doubling every comma keeps a
 * value inside its key; newline and NUL are refused outright, so no value can start another
 * option or cut one short. JSON options (-device, -blockdev, -netdev) need none of this.
 */
import { VirtkitError } from '../../util/errors.js';

/** Refuse a value that contains newline, carriage return or NUL. `what` names it in the error. */
export function assertPlainValue(value: string, what: string): string {
  if (/[\n\r\0]/.test(value)) {
    throw new VirtkitError('argument.invalid', `${what} must not contain newline or NUL, got ${JSON.stringify(value)}`, { what });
  }
  return value;
}

/** A value for a key=value option: commas doubled. */
export function optionValue(value: string, what: string): string {
  return assertPlainValue(value, what).replace(/,/g, ',,');
}

/** key=value,key=value with every value escaped. */
export function keyValueOption(pairs: ReadonlyArray<readonly [string, string]>, what: string): string {
  return pairs.map(([key, value]) => `${key}=${optionValue(value, `${what} ${key}`)}`).join(',');
}

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonProps = { [key: string]: JsonValue };

/** A JSON option argument (`-device '{"driver":...}'`). */
export function jsonOption(props: JsonProps): string {
  return JSON.stringify(props);
}
