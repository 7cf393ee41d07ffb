/** The output file of trace and netdump: an unwritable one is named as the command line named it. */
import { describe, expect, it } from 'vitest';
import { isVirtkitError } from '../../util/errors.js';
import { openOutput } from './trace.js';

async function messageOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'opened';
  } catch (err) {
    return isVirtkitError(err, 'output.unwritable') ? err.message : String(err);
  }
}

describe('openOutput', () => {
  it('names trace\'s --output, and netdump\'s FILE argument without an option it does not have', async () => {
    expect(await messageOf(openOutput('/nonexistent/x.jsonl'))).toBe('--output /nonexistent/x.jsonl: ENOENT');
    expect(await messageOf(openOutput('/nonexistent/x.pcap', ''))).toBe('/nonexistent/x.pcap: ENOENT');
  });
});
