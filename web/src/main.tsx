/** The web manager's shell: navigation, the view of the current route, the sign-in notice. */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import './style.css';
import { ErrorBox, shownError, type ShownError } from './components/errors';
import { href, useRoute } from './router';
import { hasToken, loadOperations } from './session';
import { Guest } from './pages/guest';
import { Guests } from './pages/guests';
import { Overview } from './pages/overview';
import { Storage } from './pages/storage';
import { Events, Snoop } from './pages/streams';
import { Wizard } from './pages/wizard';

const Nav: [string, string, string[]][] = [
  ['Host', href(), ['overview']],
  ['Guests', href('guests'), ['guests', 'guest']],
  ['New guest', href('new'), ['new']],
  ['Storage', href('storage'), ['storage']],
  ['Events', href('events'), ['events']],
  ['Snoop', href('snoop'), ['snoop']],
];

function App() {
  const route = useRoute();
  const [ready, setReady] = useState(false);
  const [error, setError] = useState<ShownError>();
  useEffect(() => {
    if (!hasToken) return;
    // The daemon's operations decide which features show; retried while the daemon is away.
    const load = (): void => {
      loadOperations().then(() => { setReady(true); setError(undefined); }, (e: unknown) => {
        setError(shownError(e));
        setTimeout(load, 2000);
      });
    };
    load();
  }, []);
  // Focus goes to the view's heading on navigation, so keyboard and screen reader users land there.
  useEffect(() => { document.querySelector<HTMLElement>('main h1')?.focus(); }, [route.view, ready]);
  if (!hasToken) {
    return (
      <main class="signin">
        <h1 tabIndex={-1}>virtkit</h1>
        <p>This page needs the daemon's token. Run <code>virtkit ui</code> on the host: it opens this page with the token
          (or prints the URL with <code>--print</code>).</p>
      </main>
    );
  }
  return (
    <>
      <a class="skip" href="#main">Skip to content</a>
      <header>
        <span class="brand">virtkit</span>
        <nav aria-label="Main">
          {Nav.map(([label, to, views]) => <a href={to} aria-current={views.includes(route.view) ? 'page' : undefined}>{label}</a>)}
        </nav>
      </header>
      <main id="main">
        <ErrorBox error={error} />
        {!ready ? <p>Connecting to the daemon…</p> : (
          <>
            {route.view === 'overview' ? <Overview /> : null}
            {route.view === 'guests' ? <Guests /> : null}
            {route.view === 'guest' ? <Guest name={route.name} tab={route.tab} /> : null}
            {route.view === 'new' ? <Wizard /> : null}
            {route.view === 'storage' ? <Storage /> : null}
            {route.view === 'events' ? <Events /> : null}
            {route.view === 'snoop' ? <Snoop /> : null}
          </>
        )}
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
