/**
 * Output into a closed pipe (`virtkit fs ls IMG -R | head`, `virtkit bootinfo --help | head -1`).
 * A C program writing there dies of SIGPIPE and the shell reports 141 (128 + 13); Node ignores
 * SIGPIPE and reports EPIPE as an error event instead, which without a listener is an
 * uncaught exception with a stack trace. virtkit does what `ls | head` does: it stops writing,
 * says nothing, and exits with the status a SIGPIPE death gives.
 */

/** 128 + SIGPIPE: what `$?` shows for a writer killed by a closed pipe. */
export const CLOSED_PIPE_EXIT = 141;

export function isClosedPipe(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as NodeJS.ErrnoException).code === 'EPIPE';
}

/**
 * Installs the listeners on stdout and stderr, once per process (the `virtkit` binary calls
 * it; tests calling `main()` in-process keep their own streams). Any other stream error is
 * rethrown, as it would have been without a listener.
 */
export function exitQuietlyOnClosedPipe(proc: NodeJS.Process = process): void {
  for (const stream of [proc.stdout, proc.stderr]) {
    stream.on('error', (err: Error) => {
      if (isClosedPipe(err)) proc.exit(CLOSED_PIPE_EXIT);
      throw err;
    });
  }
}
