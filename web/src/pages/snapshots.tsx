/**
 * Snapshots of a guest, shown only when the daemon serves them (`domain.snapshotList` and
 * friends, called by name through the daemon's own operation list): the tree as a table,
 * take one (internal, or disk-only), revert to one, delete one.
 */
import { useEffect, useState } from 'preact/hooks';
import { ErrorBox, shownError, type ShownError } from '../components/errors';
import { client, operation } from '../session';

interface Snapshot {
  name: string;
  kind: string;
  memory: boolean;
  state: string;
  parent?: string;
  current: boolean;
}

export function Snapshots({ name }: { name: string }) {
  const [snapshots, setSnapshots] = useState<Snapshot[]>([]);
  const [error, setError] = useState<ShownError>();
  const [diskOnly, setDiskOnly] = useState(false);
  const [busy, setBusy] = useState(false);
  const call = async (id: string, params: Record<string, string>, body?: unknown): Promise<unknown> => {
    const op = operation(id);
    if (!op) throw new Error(`the daemon has no ${id}`);
    return client.invoke(op, params, body);
  };
  const load = async (): Promise<void> => {
    const r = await call('domain.snapshotList', { name }) as { snapshots: Snapshot[] };
    setSnapshots(r.snapshots);
  };
  useEffect(() => { load().catch((e: unknown) => setError(shownError(e))); }, [name]);
  const act = async (run: () => Promise<unknown>): Promise<void> => {
    setBusy(true);
    setError(undefined);
    try { await run(); await load(); } catch (e) { setError(shownError(e)); }
    setBusy(false);
  };
  return (
    <div>
      <div class="toolbar">
        <button type="button" disabled={busy || !operation('domain.snapshotCreate')} onClick={() => void act(() => call('domain.snapshotCreate', { name }, diskOnly ? { diskOnly: true } : {}))}>Take a snapshot</button>
        <label class="inline"><input type="checkbox" checked={diskOnly} onChange={(e) => setDiskOnly(e.currentTarget.checked)} /> disk only (external)</label>
      </div>
      <ErrorBox error={error} />
      <table class="list" data-testid="snapshots">
        <thead><tr><th scope="col">Name</th><th scope="col">Kind</th><th scope="col">State</th><th scope="col">Parent</th><th scope="col">Actions</th></tr></thead>
        <tbody>
          {snapshots.map((s) => (
            <tr>
              <td>{s.name}{s.current ? ' (current)' : ''}</td>
              <td>{s.kind}{s.memory ? ', with RAM' : ''}</td>
              <td>{s.state}</td>
              <td>{s.parent ?? ''}</td>
              <td>
                <button type="button" disabled={busy} onClick={() => void act(() => call('domain.snapshotRevert', { name, snapshot: s.name }))}>Revert</button>{' '}
                <button type="button" class="danger" disabled={busy} onClick={() => { if (confirm(`Delete snapshot ${s.name}?`)) void act(() => call('domain.snapshotDelete', { name, snapshot: s.name })); }}>Delete</button>
              </td>
            </tr>
          ))}
          {snapshots.length === 0 ? <tr><td colSpan={5} class="empty">No snapshots.</td></tr> : null}
        </tbody>
      </table>
    </div>
  );
}
