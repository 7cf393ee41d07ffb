/** Hash routes (`#/guests/demo`): the server serves one page, and the fragment stays in the browser. */
import { useEffect, useState } from 'preact/hooks';

export type Route =
  | { view: 'overview' }
  | { view: 'guests' }
  | { view: 'guest'; name: string; tab: string }
  | { view: 'new' }
  | { view: 'storage' }
  | { view: 'events' }
  | { view: 'snoop' };

export function parseRoute(hash: string): Route {
  const parts = hash.replace(/^#\/?/, '').split('/').map((p) => { try { return decodeURIComponent(p); } catch { return p; } });
  switch (parts[0]) {
    case 'guests':
      return parts[1] ? { view: 'guest', name: parts[1], tab: parts[2] ?? 'overview' } : { view: 'guests' };
    case 'new': return { view: 'new' };
    case 'storage': return { view: 'storage' };
    case 'events': return { view: 'events' };
    case 'snoop': return { view: 'snoop' };
    default: return { view: 'overview' };
  }
}

export function href(...parts: string[]): string {
  return `#/${parts.map(encodeURIComponent).join('/')}`;
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const on = (): void => setRoute(parseRoute(location.hash));
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}

/** The page title of each view: the tab says where you are. */
export function useTitle(title: string): void {
  useEffect(() => { document.title = `${title} · virtkit`; }, [title]);
}
