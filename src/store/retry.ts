/**
 * Reruns a transaction that lost an optimistic race. Only `store.conflict` errors are
 * retried; anything else propagates at once.
 */
import { isVirtkitError } from '../util/errors.js';

export interface RetryOptions {
  /** Total runs of `fn`, the first included (default 5). The last conflict is rethrown. */
  attempts?: number;
  /** Wait before the nth retry: a random delay up to `backoffMs * 2^(n-1)` (default 1 ms; 0 retries at once). */
  backoffMs?: number;
}

/** `await withRetry(() => store.transaction(async (tx) => { ... }))` */
export async function withRetry<T>(fn: () => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const attempts = Math.max(1, Math.floor(options.attempts ?? 5));
  const backoffMs = options.backoffMs ?? 1;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt >= attempts || !isVirtkitError(err, 'store.conflict')) throw err;
      if (backoffMs > 0) {
        // Jitter keeps two writers that collided from colliding again in lockstep.
        const delay = Math.random() * backoffMs * 2 ** (attempt - 1);
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }
}
