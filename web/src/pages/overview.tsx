/** Host overview: the daemon, the accelerator in use, the host's CPUs and memory, guests by state. */
import { useEffect, useState } from 'preact/hooks';
import type { DaemonInfo, DomainInfo } from 'virtkit/client/browser';
import { ErrorBox, shownError, type ShownError } from '../components/errors';
import { useLive } from '../live';
import { href, useTitle } from '../router';
import { client, operation } from '../session';

interface HostInfo {
  qemuVersion?: string;
  accel?: string;
  accelReason?: string;
  cpus?: number;
  memoryBytes?: number;
}

export function Overview() {
  useTitle('Host');
  const live = useLive();
  const [info, setInfo] = useState<DaemonInfo>();
  const [host, setHost] = useState<HostInfo>();
  const [running, setRunning] = useState<DomainInfo[]>([]);
  const [error, setError] = useState<ShownError>();
  useEffect(() => {
    client.daemonInfo().then(setInfo, (e: unknown) => setError(shownError(e)));
    const hostInfo = operation('host.info');
    if (hostInfo) client.invoke(hostInfo, {}).then((h) => setHost(h as HostInfo), () => undefined);
  }, []);
  const names = [...live.domains.values()].filter((d) => d.state === 'running' || d.state === 'paused').map((d) => d.name).join(',');
  useEffect(() => {
    Promise.all(names ? names.split(',').map((n) => client.info(n)) : []).then(setRunning, () => undefined);
  }, [names]);
  const byState = new Map<string, number>();
  for (const d of live.domains.values()) byState.set(d.state, (byState.get(d.state) ?? 0) + 1);
  const accels = [...new Set(running.map((d) => d.accel).filter((a): a is string => a !== undefined))];
  return (
    <section>
      <h1>Host</h1>
      <ErrorBox error={error} />
      <div class="cards">
        <div class="card">
          <h2>Daemon</h2>
          <dl>
            <dt>API version</dt><dd>{info?.version ?? '…'}</dd>
            <dt>Driver</dt><dd>{info?.driver ?? 'qemu'}</dd>
            <dt>Process</dt><dd>{info ? `pid ${info.pid}` : '…'}</dd>
            <dt>State dir</dt><dd><code>{info?.stateDir ?? '…'}</code></dd>
            <dt>Store revision</dt><dd>{info?.revision ?? '…'}</dd>
          </dl>
        </div>
        <div class="card">
          <h2>Hypervisor</h2>
          <dl>
            <dt>QEMU</dt><dd>{host?.qemuVersion ?? 'run virtkit capabilities on the host'}</dd>
            <dt>Accelerator in use</dt><dd>{accels.length > 0 ? accels.join(', ') : (host?.accel ?? 'no guest running')}</dd>
            <dt>Why</dt><dd>{host?.accelReason ?? (accels.includes('tcg') ? 'accel: auto picks KVM only when it works; TCG otherwise' : '—')}</dd>
            <dt>CPUs</dt><dd>{host?.cpus ?? navigator.hardwareConcurrency}</dd>
            <dt>Memory</dt><dd>{host?.memoryBytes !== undefined ? `${(host.memoryBytes / 2 ** 30).toFixed(1)} GiB` : '—'}</dd>
          </dl>
        </div>
        <div class="card">
          <h2>Guests</h2>
          <dl>
            {['running', 'paused', 'shutoff', 'crashed'].map((s) => (
              <><dt><span class={`state state-${s}`}>{s}</span></dt><dd data-testid={`count-${s}`}>{byState.get(s) ?? 0}</dd></>
            ))}
          </dl>
          <p><a href={href('guests')}>All guests</a> · <a href={href('new')}>New guest</a></p>
        </div>
      </div>
    </section>
  );
}
