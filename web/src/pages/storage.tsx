/** Storage: pools and their volumes, with upload and download progress. */
import { useEffect, useState } from 'preact/hooks';
import type { PoolSummary, VolumeInfo } from 'virtkit/client/browser';
import { ErrorBox, shownError, type ShownError } from '../components/errors';
import { useTitle } from '../router';
import { client } from '../session';

const size = (bytes: number): string => (bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(1)} GiB` : `${(bytes / 2 ** 20).toFixed(1)} MiB`);

export function Storage() {
  useTitle('Storage');
  const [pools, setPools] = useState<PoolSummary[]>([]);
  const [pool, setPool] = useState('');
  const [volumes, setVolumes] = useState<VolumeInfo[]>([]);
  const [error, setError] = useState<ShownError>();
  const [transfer, setTransfer] = useState<{ label: string; done: number; total: number }>();
  const loadPools = (): void => {
    client.poolList({ all: true }).then((p) => {
      setPools(p.pools);
      if (!pool && p.pools[0]) setPool(p.pools[0].name);
    }, (e: unknown) => setError(shownError(e)));
  };
  const loadVolumes = (): void => {
    if (pool) client.volumeList(pool).then((v) => setVolumes(v.volumes), (e: unknown) => setError(shownError(e)));
  };
  useEffect(loadPools, []);
  useEffect(loadVolumes, [pool]);
  const upload = async (file: File): Promise<void> => {
    setError(undefined);
    const name = file.name.replace(/[^A-Za-z0-9_.+-]/g, '_');
    try {
      await client.volumeCreate(pool, { name, capacity: file.size, format: 'raw' });
      await client.uploadVolume(pool, name, file, (done, total) => setTransfer({ label: `upload ${name}`, done, total }));
      loadVolumes();
    } catch (e) { setError(shownError(e)); }
  };
  const download = async (v: VolumeInfo): Promise<void> => {
    setError(undefined);
    try {
      const chunks = await client.downloadVolume(pool, v.name, (done, total) => setTransfer({ label: `download ${v.name}`, done, total }));
      const url = URL.createObjectURL(new Blob(chunks as BlobPart[]));
      const a = document.createElement('a');
      a.href = url;
      a.download = v.name;
      a.click();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (e) { setError(shownError(e)); }
  };
  const remove = async (v: VolumeInfo): Promise<void> => {
    if (!confirm(`Delete volume ${pool}/${v.name}?`)) return;
    try { await client.volumeDelete(pool, v.name); loadVolumes(); } catch (e) { setError(shownError(e)); }
  };
  return (
    <section>
      <h1>Storage</h1>
      <ErrorBox error={error} />
      <h2>Pools</h2>
      <table class="list">
        <thead><tr><th scope="col">Name</th><th scope="col">Type</th><th scope="col">Path</th><th scope="col">State</th></tr></thead>
        <tbody>
          {pools.map((p) => (
            <tr aria-selected={p.name === pool}>
              <td><button type="button" class="link" onClick={() => setPool(p.name)}>{p.name}</button></td>
              <td>{p.type}</td><td><code>{p.path}</code></td><td>{p.state}</td>
            </tr>
          ))}
          {pools.length === 0 ? <tr><td colSpan={4} class="empty">No pools: virtkit pool-define-as NAME dir PATH</td></tr> : null}
        </tbody>
      </table>
      {pool ? (
        <>
          <h2>Volumes of {pool}</h2>
          <div class="toolbar">
            <label class="button">Upload an image…<input type="file" class="visually-hidden" onChange={(e) => { const f = e.currentTarget.files?.[0]; if (f) void upload(f); }} /></label>
            <button type="button" onClick={loadVolumes}>Refresh</button>
          </div>
          {transfer ? (
            <div class="transfer">
              <label>{transfer.label} <progress max={transfer.total || 1} value={transfer.done} /></label> {size(transfer.done)} of {size(transfer.total)}
            </div>
          ) : null}
          <table class="list">
            <thead><tr><th scope="col">Name</th><th scope="col">Format</th><th scope="col">Capacity</th><th scope="col">Allocation</th><th scope="col">Actions</th></tr></thead>
            <tbody>
              {volumes.map((v) => (
                <tr>
                  <td>{v.name}</td><td>{v.format}</td><td>{size(v.capacity)}</td><td>{size(v.allocation)}</td>
                  <td><button type="button" onClick={() => void download(v)}>Download</button> <button type="button" class="danger" onClick={() => void remove(v)}>Delete</button></td>
                </tr>
              ))}
              {volumes.length === 0 ? <tr><td colSpan={5} class="empty">No volumes.</td></tr> : null}
            </tbody>
          </table>
        </>
      ) : null}
    </section>
  );
}
