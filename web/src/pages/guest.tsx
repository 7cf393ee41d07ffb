/**
 * One guest: its state and lifecycle buttons, live charts from the statistics API when the
 * daemon has it, the serial and graphical consoles, the console log, the definition, and any
 * further operation the daemon serves for a domain (save, snapshots, hot-plug...).
 */
import { useEffect, useState } from 'preact/hooks';
import type { DomainInfo } from 'virtkit/client/browser';
import { ErrorBox, shownError, type ShownError } from '../components/errors';
import { SerialConsole } from '../components/console';
import { VncConsole } from '../components/vnc';
import { LiveChart } from '../components/chart';
import { useLive } from '../live';
import { href, useTitle } from '../router';
import { allOperations, client, operation } from '../session';
import { DefinitionEditor } from './definition';
import { Snapshots } from './snapshots';
import { terminalSafe } from '../text';

/** Operations with buttons of their own here (everything else of a domain is listed under "More"). */
const CoreOperations = new Set(['domain.info', 'domain.state', 'domain.start', 'domain.shutdown', 'domain.destroy', 'domain.reboot', 'domain.reset',
  'domain.suspend', 'domain.resume', 'domain.undefine', 'domain.getDefinition', 'domain.updateDefinition', 'domain.consoleLog',
  'domain.setAutostart', 'domain.stats', 'domain.monitorCommand', 'domain.traceEvents',
  // The Snapshots tab's.
  'domain.snapshotCreate', 'domain.snapshotRevert', 'domain.snapshotDelete']);

export function Guest({ name, tab }: { name: string; tab: string }) {
  useTitle(`${name} · ${tab}`);
  const live = useLive();
  const summary = live.domains.get(name);
  const [info, setInfo] = useState<DomainInfo>();
  const [graphics, setGraphics] = useState(false);
  const [error, setError] = useState<ShownError>();
  const [busy, setBusy] = useState('');
  const [timeout, setTimeoutSeconds] = useState(30);
  const state = summary?.state ?? info?.state;
  useEffect(() => {
    client.info(name).then(setInfo, (e: unknown) => setError(shownError(e)));
    client.getDefinition(name, 'json').then((d) => setGraphics((JSON.parse(d.text) as { graphics?: string }).graphics === 'vnc'), () => undefined);
  }, [name, state]);
  const act = async (label: string, run: () => Promise<unknown>): Promise<void> => {
    setBusy(label);
    setError(undefined);
    try { await run(); } catch (e) { setError(shownError(e)); }
    setBusy('');
  };
  const active = state === 'running' || state === 'paused';
  const tabs: [string, string][] = [['overview', 'Overview'], ['console', 'Serial console'], ...(graphics ? [['display', 'Display'] as [string, string]] : []),
    ['log', 'Console log'], ['definition', 'Definition']];
  if (operation('domain.snapshotList')) tabs.push(['snapshots', 'Snapshots']);
  const more = allOperations().filter((op) => op.path.startsWith('/domains/{name}/') && !CoreOperations.has(op.id) && op.http !== 'GET');
  if (more.length > 0) tabs.push(['more', 'More']);
  return (
    <section>
      <p class="crumbs"><a href={href('guests')}>Guests</a> / {name}</p>
      <h1>{name} <span class={`state state-${state ?? 'unknown'}`} data-testid="guest-state">{state ?? '…'}</span></h1>
      <div class="toolbar" role="toolbar" aria-label="Lifecycle">
        <button type="button" disabled={!!busy || active} onClick={() => void act('start', () => client.start(name))}>Start</button>
        <label class="inline">timeout <input type="number" min={1} max={3600} value={timeout} aria-label="Shutdown timeout (seconds)"
          onInput={(e) => setTimeoutSeconds(Number(e.currentTarget.value))} /> s</label>
        <button type="button" disabled={!!busy || state !== 'running'} onClick={() => void act('shutdown', () => client.shutdown(name, { timeout }))}>Shut down</button>
        <button type="button" disabled={!!busy || !active} onClick={() => void act('destroy', () => client.destroy(name))}>Force off</button>
        <button type="button" disabled={!!busy || state !== 'running'} onClick={() => void act('reboot', () => client.reboot(name))}>Reboot</button>
        <button type="button" disabled={!!busy || state !== 'running'} onClick={() => void act('pause', () => client.suspend(name))}>Pause</button>
        <button type="button" disabled={!!busy || state !== 'paused'} onClick={() => void act('resume', () => client.resume(name))}>Resume</button>
        <button type="button" class="danger" disabled={!!busy || active} onClick={() => {
          if (confirm(`Undefine ${name}? Its definition is removed; disks stay.`)) void act('undefine', async () => { await client.undefine(name); location.hash = href('guests'); });
        }}>Undefine</button>
        {busy ? <span class="busy" aria-live="polite">{busy}…</span> : null}
      </div>
      <ErrorBox error={error} />
      <nav class="tabs" aria-label="Guest views">
        {tabs.map(([id, label]) => <a href={href('guests', name, id)} aria-current={tab === id ? 'page' : undefined}>{label}</a>)}
      </nav>
      {tab === 'overview' ? <GuestOverview name={name} info={info} active={active} /> : null}
      {tab === 'console' ? (active ? <SerialConsole name={name} /> : <p>The guest is not running: start it to attach the console.</p>) : null}
      {tab === 'display' ? (active ? <VncConsole name={name} /> : <p>The guest is not running.</p>) : null}
      {tab === 'log' ? <ConsoleLog name={name} /> : null}
      {tab === 'definition' ? <DefinitionEditor name={name} running={active} /> : null}
      {tab === 'snapshots' ? <Snapshots name={name} /> : null}
      {tab === 'more' ? <MoreOperations name={name} /> : null}
    </section>
  );
}

function GuestOverview({ name, info, active }: { name: string; info: DomainInfo | undefined; active: boolean }) {
  return (
    <div class="cards">
      <div class="card">
        <h2>Guest</h2>
        <dl>
          <dt>UUID</dt><dd><code>{info?.uuid}</code></dd>
          <dt>Memory</dt><dd>{info ? `${info.memory / 2 ** 20} MiB` : '…'}</dd>
          <dt>vCPUs</dt><dd>{info?.vcpus}</dd>
          <dt>Accelerator</dt><dd>{info?.accel ?? '—'}</dd>
          <dt>QEMU pid</dt><dd>{info?.pid ?? '—'}</dd>
          <dt>Last stop</dt><dd>{info?.reason ?? '—'}</dd>
          <dt>Autostart</dt><dd>{info?.autostart ? 'yes' : 'no'}</dd>
          {info?.definitionDiffers ? <><dt>Pending</dt><dd>saved definition differs from the running one (see Definition)</dd></> : null}
        </dl>
      </div>
      {active && operation('domain.stats') ? <StatsCharts name={name} /> : null}
    </div>
  );
}

interface Stats {
  cpu: { timeSeconds: number };
  memory: { rssBytes: number; balloonBytes?: number };
  block: { rdBytes: number; wrBytes: number }[];
  net: { rxBytes: number | null; txBytes: number | null }[];
}

/** Samples the statistics API every 2 s while shown (rates from counter differences). */
function StatsCharts({ name }: { name: string }) {
  const [samples, setSamples] = useState<{ t: number; s: Stats }[]>([]);
  const [error, setError] = useState<ShownError>();
  useEffect(() => {
    let stop = false;
    const tick = async (): Promise<void> => {
      try {
        const s = await client.call('domain.stats' as never, { params: { name } } as never) as unknown as Stats;
        if (!stop) setSamples((prev) => [...prev.slice(-60), { t: Date.now() / 1000, s }]);
      } catch (e) { setError(shownError(e)); }
      if (!stop) setTimeout(() => void tick(), 2000);
    };
    void tick();
    return () => { stop = true; };
  }, [name]);
  const rate = (pick: (s: Stats) => number): number[][] => samples.slice(1).map((cur, i) => {
    const prev = samples[i]!;
    return [cur.t, Math.max(0, (pick(cur.s) - pick(prev.s)) / (cur.t - prev.t))];
  });
  const sum = (xs: (number | null)[]): number => xs.reduce<number>((a, b) => a + (b ?? 0), 0);
  return (
    <div class="card charts">
      <h2>Activity</h2>
      <ErrorBox error={error} />
      <LiveChart title="CPU" unit="%" series={['cpu']} samples={rate((s) => s.cpu.timeSeconds * 100)} />
      <LiveChart title="Memory" unit="MiB" series={['rss']} samples={samples.map(({ t, s }) => [t, s.memory.rssBytes / 2 ** 20])} />
      <LiveChart title="Disk" unit="KiB/s" series={['read', 'write']} samples={samples.slice(1).map((cur, i) => {
        const prev = samples[i]!;
        const dt = cur.t - prev.t;
        return [cur.t, (sum(cur.s.block.map((b) => b.rdBytes)) - sum(prev.s.block.map((b) => b.rdBytes))) / dt / 1024,
          (sum(cur.s.block.map((b) => b.wrBytes)) - sum(prev.s.block.map((b) => b.wrBytes))) / dt / 1024];
      })} />
      <LiveChart title="Network" unit="KiB/s" series={['rx', 'tx']} samples={samples.slice(1).map((cur, i) => {
        const prev = samples[i]!;
        const dt = cur.t - prev.t;
        return [cur.t, (sum(cur.s.net.map((n) => n.rxBytes)) - sum(prev.s.net.map((n) => n.rxBytes))) / dt / 1024,
          (sum(cur.s.net.map((n) => n.txBytes)) - sum(prev.s.net.map((n) => n.txBytes))) / dt / 1024];
      })} />
    </div>
  );
}

function ConsoleLog({ name }: { name: string }) {
  const [text, setText] = useState<string>();
  const [error, setError] = useState<ShownError>();
  const load = (): void => { client.consoleLog(name).then(setText, (e: unknown) => setError(shownError(e))); };
  useEffect(load, [name]);
  return (
    <div>
      <ErrorBox error={error} />
      <div class="toolbar"><button type="button" onClick={load}>Reload</button></div>
      <pre class="log" tabIndex={0} aria-label="Console log">{text === undefined ? '…' : terminalSafe(text)}</pre>
    </div>
  );
}

/** Operations of a domain this page has no button for, from the daemon's own method list. */
function MoreOperations({ name }: { name: string }) {
  const ops = allOperations().filter((op) => op.path.startsWith('/domains/{name}/') && !CoreOperations.has(op.id) && op.http !== 'GET');
  const [body, setBody] = useState<Record<string, string>>({});
  const [result, setResult] = useState<Record<string, string>>({});
  const [errors, setErrors] = useState<Record<string, ShownError | undefined>>({});
  const run = async (id: string): Promise<void> => {
    const op = ops.find((o) => o.id === id)!;
    try {
      const parsed: unknown = op.body ? JSON.parse(body[id] || '{}') : undefined;
      const r = await client.invoke(op, { name }, parsed);
      setResult({ ...result, [id]: JSON.stringify(r, null, 2) });
      setErrors({ ...errors, [id]: undefined });
    } catch (e) {
      setErrors({ ...errors, [id]: shownError(e) });
    }
  };
  return (
    <div class="more">
      {ops.map((op) => (
        <div class="card" data-operation={op.id}>
          <h3>{op.summary || op.id} <small><code>{op.id}</code></small></h3>
          {op.body ? <textarea aria-label={`${op.id} body (JSON)`} rows={3} placeholder="{}" value={body[op.id] ?? ''} onInput={(e) => setBody({ ...body, [op.id]: e.currentTarget.value })} /> : null}
          <button type="button" onClick={() => void run(op.id)}>Run</button>
          <ErrorBox error={errors[op.id]} />
          {result[op.id] ? <pre>{result[op.id]}</pre> : null}
        </div>
      ))}
    </div>
  );
}
