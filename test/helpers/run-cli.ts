/**
 * Runs the CLI in this process (`main` of src/cli/main.ts) with stdout and stderr captured:
 * its exit code and what it wrote. The spies are removed and `process.exitCode` cleared
 * afterwards, so one run never leaks into the next or into the test runner's own status.
 */
import { vi } from 'vitest';
import { main } from '../../src/cli/main.js';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

export async function runCli(args: string[]): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  // Buffer.from: a Uint8Array chunk as text, not as String()'s comma-separated bytes.
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => { stdout += Buffer.from(chunk).toString(); return true; });
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => { stderr += Buffer.from(chunk).toString(); return true; });
  try {
    return { code: await main(args), stdout, stderr };
  } finally {
    vi.restoreAllMocks();
    process.exitCode = undefined;
  }
}
