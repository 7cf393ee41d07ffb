/** The guest list: live state from the event stream, a filter, and bulk lifecycle actions. */
import { useState } from 'preact/hooks';
import type { DomainSummary } from 'virtkit/client/browser';
import { ErrorBox, shownError, type ShownError } from '../components/errors';
import { useLive } from '../live';
import { href, useTitle } from '../router';
import { client } from '../session';

type Bulk = { label: string; when: DomainSummary['state'][]; run: (name: string) => Promise<unknown> };

const BulkActions: Bulk[] = [
  { label: 'Start', when: ['shutoff', 'crashed'], run: (n) => client.start(n) },
  { label: 'Shut down', when: ['running'], run: (n) => client.shutdown(n, { timeout: 30 }) },
  { label: 'Force off', when: ['running', 'paused'], run: (n) => client.destroy(n) },
  { label: 'Pause', when: ['running'], run: (n) => client.suspend(n) },
  { label: 'Resume', when: ['paused'], run: (n) => client.resume(n) },
];

export function Guests() {
  useTitle('Guests');
  const live = useLive();
  const [filter, setFilter] = useState('');
  const [stateFilter, setStateFilter] = useState('');
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [errors, setErrors] = useState<{ name: string; error: ShownError }[]>([]);
  const [busy, setBusy] = useState(false);
  const rows = [...live.domains.values()]
    .filter((d) => d.name.toLowerCase().includes(filter.toLowerCase()) && (stateFilter === '' || d.state === stateFilter))
    .sort((a, b) => a.name.localeCompare(b.name));
  const toggle = (name: string): void => {
    const next = new Set(selected);
    if (next.has(name)) next.delete(name); else next.add(name);
    setSelected(next);
  };
  const bulk = async (action: Bulk): Promise<void> => {
    setBusy(true);
    const targets = rows.filter((d) => selected.has(d.name) && action.when.includes(d.state));
    const failed: { name: string; error: ShownError }[] = [];
    await Promise.all(targets.map((d) => action.run(d.name).catch((e: unknown) => failed.push({ name: d.name, error: shownError(e) }))));
    setErrors(failed);
    setBusy(false);
  };
  return (
    <section>
      <h1>Guests</h1>
      <div class="toolbar" role="toolbar" aria-label="Guest list">
        <input type="search" placeholder="Filter by name" aria-label="Filter by name" value={filter} onInput={(e) => setFilter(e.currentTarget.value)} />
        <select aria-label="State" value={stateFilter} onChange={(e) => setStateFilter(e.currentTarget.value)}>
          <option value="">any state</option>
          {['running', 'paused', 'shutoff', 'crashed'].map((s) => <option value={s}>{s}</option>)}
        </select>
        {BulkActions.map((a) => (
          <button type="button" disabled={busy || ![...selected].some((n) => a.when.includes(live.domains.get(n)?.state ?? 'shutoff'))} onClick={() => void bulk(a)}>
            {a.label}
          </button>
        ))}
        <a class="button primary" href={href('new')}>New guest</a>
      </div>
      <span class={`connection connection-${live.connection.state}`} aria-live="polite">
        {live.connection.state === 'live' ? 'live' : live.connection.state === 'error' ? `reconnecting: ${live.connection.error ?? ''}` : 'connecting'}
      </span>
      {errors.map((e) => <ErrorBox error={{ ...e.error, message: `${e.name}: ${e.error.message}` }} />)}
      <table class="list" data-testid="guest-list">
        <thead>
          <tr>
            <th scope="col"><input type="checkbox" aria-label="Select all" checked={rows.length > 0 && rows.every((r) => selected.has(r.name))}
              onChange={(e) => setSelected(e.currentTarget.checked ? new Set(rows.map((r) => r.name)) : new Set())} /></th>
            <th scope="col">Name</th><th scope="col">State</th><th scope="col">Autostart</th><th scope="col">Notes</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((d) => (
            <tr data-name={d.name}>
              <td><input type="checkbox" aria-label={`Select ${d.name}`} checked={selected.has(d.name)} onChange={() => toggle(d.name)} /></td>
              <td><a href={href('guests', d.name)}>{d.name}</a></td>
              <td><span class={`state state-${d.state}`} data-testid="state">{d.state}</span></td>
              <td>{d.autostart ? 'yes' : 'no'}</td>
              <td>{[...(d.degraded ? ['monitor lost, reconnecting'] : []), ...d.tainted.map((t) => `tainted: ${t}`)].join('; ')}</td>
            </tr>
          ))}
          {rows.length === 0 ? <tr><td colSpan={5} class="empty">{live.domains.size === 0 ? 'No guests defined yet.' : 'No guest matches the filter.'}</td></tr> : null}
        </tbody>
      </table>
    </section>
  );
}
