/** Host overview: the daemon, the accelerator in use, the host's CPUs and memory, guests by state. */
import { useEffect, useState } from 'preact/hooks';
import type { DaemonInfo, DomainInfo } from 'virtkit/client/browser';
import { ErrorBox, shownError, type ShownError } from '../components/errors';
import { useLive } from '../live';
import { href, useTitle } from '../router';
import { client, operation } from '../session';

/** `host.info` (src/api/web.ts), asked only of a daemon that serves it. */
interface HostInfo {
  hostname: string;
  cpus: number;
  cpuModel: string;
  memoryBytes: number;
  qemu: { binary: string; version: string; accelerators: string[] };
  accel: { auto: string; reason: string };
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
            <dt>Host</dt><dd>{host?.hostname ?? '…'}</dd>
            <dt>QEMU</dt><dd data-testid="qemu-version">{host ? `${host.qemu.version} (${host.qemu.binary})` : '…'}</dd>
            <dt>Accelerators</dt><dd>{host?.qemu.accelerators.join(', ') ?? '…'}</dd>
            <dt>accel: auto picks</dt><dd>{host?.accel.auto ?? '…'}</dd>
            <dt>Why</dt><dd>{host?.accel.reason ?? '…'}</dd>
            <dt>In use by running guests</dt><dd>{accels.length > 0 ? accels.join(', ') : 'no guest running'}</dd>
            <dt>CPUs</dt><dd>{host ? `${host.cpus} × ${host.cpuModel}` : '…'}</dd>
            <dt>Memory</dt><dd>{host ? `${(host.memoryBytes / 2 ** 30).toFixed(1)} GiB` : '…'}</dd>
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
