/**
 * What a promise ended with, as a word a test can compare: `ok`, the VirtkitError's code, or
 * `plain: …` for anything else (an untyped error is itself a failure worth seeing).
 */
import { isVirtkitError } from '../../src/util/errors.js';

export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return isVirtkitError(err) ? err.code : `plain: ${String(err)}`;
  }
  return 'ok';
}
