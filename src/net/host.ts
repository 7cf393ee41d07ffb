/**
 * Runs the host's network tools (`ip`, `nft`, `tc`, `dnsmasq`): the one file of net/ that
 * starts processes. Each is a short command awaited to its end; dnsmasq forks itself into the
 * background and is meant to outlive the daemon (it is adopted by pid file, see dnsmasq.ts).
 * Failures are `network.host-failed` with the tool's own stderr line.
 */
import { execFile } from 'node:child_process';
import { VirtkitError } from '../util/errors.js';

export interface RunResult {
  stdout: string;
  stderr: string;
}

export function runTool(file: string, args: readonly string[], opts: { input?: string } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(file, [...args], { timeout: 15_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) {
        const line = stderr.trim().split('\n').slice(-3).join(' ') || err.message;
        reject(new VirtkitError('network.host-failed', `${file} ${args.slice(0, 6).join(' ')}: ${line}`, { command: [file, ...args], stderr: stderr.slice(0, 2000) }));
      } else resolve({ stdout, stderr });
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** `ip -j ARGS` parsed; an empty answer is []. */
export async function ipJson<T>(args: readonly string[]): Promise<T[]> {
  const { stdout } = await runTool('ip', ['-j', ...args]);
  return stdout.trim() === '' ? [] : (JSON.parse(stdout) as T[]);
}
