/**
 * The page's session: the token from the URL fragment (`virtkit ui` prints `#token=...`; a
 * fragment is never sent to a server), kept in session storage so a reload or a new view keeps
 * it and closing the tab forgets it; and the one typed client every view talks through.
 */
import { BrowserClient, type Operation } from 'virtkit/client/browser';

const TokenKey = 'virtkit.token';

export function takeToken(): string | undefined {
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (m?.[1]) {
    sessionStorage.setItem(TokenKey, decodeURIComponent(m[1]));
    // The token leaves the address bar (and the history) at once.
    history.replaceState(null, '', `${location.pathname}#/`);
  }
  return sessionStorage.getItem(TokenKey) ?? undefined;
}

const token = takeToken();

// A `#token=...` pasted into this tab's address bar is only a hash change: no page load reads it.
// The new token is taken and the page starts over with it (its client holds the token it began with).
addEventListener('hashchange', () => {
  if (/(?:^#|&)token=/.test(location.hash)) {
    takeToken();
    location.reload();
  }
});
export const hasToken = token !== undefined;
export const client = new BrowserClient(token === undefined ? {} : { token });

/** The operations of the daemon, by method name (features appear when the daemon has them). */
let operations: Map<string, Operation> | undefined;
export async function loadOperations(): Promise<Map<string, Operation>> {
  operations ??= new Map((await client.operations()).map((op) => [op.id, op]));
  return operations;
}
export function operation(id: string): Operation | undefined {
  return operations?.get(id);
}
export function allOperations(): Operation[] {
  return [...(operations?.values() ?? [])];
}
