/** The event stream and the store snoop as live tables. */
import { useEffect, useState } from 'preact/hooks';
import type { SnoopRecord } from 'virtkit/client/browser';
import { ErrorBox, shownError, type ShownError } from '../components/errors';
import { useLive } from '../live';
import { href, useTitle } from '../router';
import { client } from '../session';

export function Events() {
  useTitle('Events');
  const live = useLive();
  const rows = [...live.events].reverse();
  return (
    <section>
      <h1>Events</h1>
      <p>Domain events as the daemon records them, newest first (since this page opened).</p>
      <table class="list" data-testid="events">
        <thead><tr><th scope="col">Seq</th><th scope="col">Time</th><th scope="col">Domain</th><th scope="col">Event</th><th scope="col">Reason</th></tr></thead>
        <tbody>
          {rows.map((e) => (
            <tr><td>{e.seq}</td><td>{new Date(e.time).toLocaleTimeString()}</td><td><a href={href('guests', e.domain)}>{e.domain}</a></td><td>{e.type}</td><td>{e.reason ?? ''}</td></tr>
          ))}
          {rows.length === 0 ? <tr><td colSpan={5} class="empty">Nothing yet: start or stop a guest.</td></tr> : null}
        </tbody>
      </table>
    </section>
  );
}

export function Snoop() {
  useTitle('Store snoop');
  const [rows, setRows] = useState<SnoopRecord[]>([]);
  const [error, setError] = useState<ShownError>();
  const [paused, setPaused] = useState(false);
  useEffect(() => {
    if (paused) return undefined;
    const ac = new AbortController();
    void (async () => {
      try {
        for await (const rec of client.snoop(ac.signal)) setRows((prev) => [rec, ...prev].slice(0, 500));
      } catch (e) {
        if (!ac.signal.aborted) setError(shownError(e));
      }
    })();
    return () => ac.abort();
  }, [paused]);
  return (
    <section>
      <h1>Store snoop</h1>
      <p>Every operation on the state store, as <code>virtkit snoop</code> shows it: who (pid, client), transaction, operation, path, result.</p>
      <div class="toolbar">
        <button type="button" onClick={() => setPaused(!paused)}>{paused ? 'Follow' : 'Pause'}</button>
        <button type="button" onClick={() => setRows([])}>Clear</button>
      </div>
      <ErrorBox error={error} />
      <table class="list snoop" data-testid="snoop">
        <thead><tr><th scope="col">Time</th><th scope="col">Pid</th><th scope="col">Client</th><th scope="col">Tx</th><th scope="col">Op</th><th scope="col">Path</th><th scope="col">Result</th></tr></thead>
        <tbody>
          {rows.map((r) => (
            <tr><td>{r.time.slice(11, 23)}</td><td>{r.pid ?? ''}</td><td>{r.client}</td><td>{r.tx}</td><td>{r.op}</td><td><code>{r.path}</code></td><td>{r.result}</td></tr>
          ))}
          {rows.length === 0 ? <tr><td colSpan={7} class="empty">Waiting for store operations…</td></tr> : null}
        </tbody>
      </table>
    </section>
  );
}
