/**
 * A progress line for the long guest-state verbs (save, restore, managedsave, dump,
 * snapshot-create/revert): while the call runs, `domain.jobInfo` is polled on a second
 * connection and drawn on stderr when it is a terminal. Nothing is printed otherwise.
 */
import { connect } from '../../client/index.js';
import type { ConnectOpts } from './connect.js';

const PollMs = 500;

function mib(n: number): string {
  return `${(n / (1024 * 1024)).toFixed(1)} MiB`;
}

/** Runs `call`, showing the progress of `domain`'s job meanwhile (when stderr is a terminal and `quiet` is not set). */
export async function withJobProgress<T>(opts: ConnectOpts, domain: string | undefined, call: () => Promise<T>, quiet = false): Promise<T> {
  if (quiet || domain === undefined || process.stderr.isTTY !== true) return call();
  const poller = connect(opts.connect);
  let drawn = false;
  let stopped = false;
  // the wait between polls ends early when the call returns: the verb never waits for a tick
  let wake: (() => void) | undefined;
  let timer: NodeJS.Timeout | undefined;
  const tick = async (): Promise<void> => {
    while (!stopped) {
      await new Promise<void>((r) => { wake = r; timer = setTimeout(r, PollMs); });
      if (stopped) break;
      const job = await poller.jobInfo(domain).catch(() => undefined);
      if (stopped || !job || job.type === 'none') continue;
      const done = job.done ?? 0;
      const total = job.total ?? 0;
      const percent = total > 0 ? Math.min(100, Math.floor((done / total) * 100)) : undefined;
      process.stderr.write(`\r${job.type}: ${percent !== undefined ? `${String(percent).padStart(3)}%  ` : ''}${mib(done)}${total > 0 ? ` / ${mib(total)}` : ''}\x1b[K`);
      drawn = true;
    }
  };
  const ticking = tick();
  try {
    return await call();
  } finally {
    stopped = true;
    clearTimeout(timer);
    wake?.();
    await ticking;
    poller.close();
    if (drawn) process.stderr.write('\r\x1b[K');
  }
}
