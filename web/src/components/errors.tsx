/** Typed API errors as people read them: the code, the daemon's message, the field it names. */
import { isVirtkitError } from 'virtkit/client/browser';

import type { ShownError } from '../forms';

export type { ShownError };

export function shownError(err: unknown): ShownError {
  if (isVirtkitError(err)) {
    const path = typeof err.data.path === 'string' ? err.data.path : undefined;
    return { code: err.code, message: err.message, ...(path !== undefined ? { path } : {}) };
  }
  return { code: 'internal', message: err instanceof Error ? err.message : String(err) };
}

export function ErrorBox({ error }: { error: ShownError | undefined }) {
  if (!error) return null;
  return (
    <div class="error" role="alert">
      <code>{error.code}</code> {error.message}
    </div>
  );
}
