/**
 * dnsmasq for a nat/isolated network: DHCP and DNS on the bridge only. It is started
 * daemonized (it forks; the daemon does not wait on it) so that it outlives the daemon as
 * QEMU does, and is adopted at the next start from its pid file. It is signalled only when
 * proven ours: the pid's /proc cmdline is dnsmasq's and carries this network's own pid-file
 * argument (a path in virtkit's state dir), so a recycled pid is left alone.
 */
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { NetworkDefinition } from './definition.js';
import { runTool } from './host.js';
import { maskOf, formatIpv4, parseSubnet } from './subnet.js';

export const DnsmasqBinary = '/usr/sbin/dnsmasq';

export interface DnsmasqPaths {
  dir: string;
  pidFile: string;
  leaseFile: string;
}

export function dnsmasqPaths(netDir: string): DnsmasqPaths {
  return { dir: netDir, pidFile: join(netDir, 'dnsmasq.pid'), leaseFile: join(netDir, 'dnsmasq.leases') };
}

/** dnsmasq's arguments for a network (pure; unit-tested). */
export function renderDnsmasqArgs(def: NetworkDefinition, paths: DnsmasqPaths): string[] {
  const subnet = parseSubnet(def.subnet!);
  const args = [
    // No configuration file of the host's: everything it does is on this line.
    '--conf-file=/dev/null',
    `--pid-file=${paths.pidFile}`,
    `--dhcp-leasefile=${paths.leaseFile}`,
    '--bind-interfaces',
    `--interface=${def.bridge!}`,
    '--except-interface=lo',
    `--listen-address=${def.address!}`,
    '--strict-order',
    '--no-resolv',
    '--no-hosts',
    '--dhcp-authoritative',
    '--dhcp-no-override',
    `--dhcp-range=${def.dhcp!.start},${def.dhcp!.end},${formatIpv4(maskOf(subnet.prefix))},1h`,
    `--dhcp-option=option:dns-server,${def.address!}`,
    // Guests' DHCP host names answer in DNS (NAME, and NAME.DOMAIN with a domain).
    ...(def.domain ? [`--domain=${def.domain}`, `--local=/${def.domain}/`, '--expand-hosts'] : []),
  ];
  // No default route for an isolated network's guests: nothing leaves through the bridge.
  if (def.mode === 'isolated') args.push('--dhcp-option=option:router');
  else args.push(`--dhcp-option=option:router,${def.address!}`);
  return args;
}

export async function startDnsmasq(def: NetworkDefinition, paths: DnsmasqPaths): Promise<number> {
  await runTool(DnsmasqBinary, renderDnsmasqArgs(def, paths));
  const pid = await provenDnsmasq(paths);
  if (pid === undefined) throw new Error(`dnsmasq for network ${def.name} did not stay up (no live pid in ${paths.pidFile})`);
  return pid;
}

/** The pid of this network's dnsmasq when it runs and is proven ours, else undefined. */
export async function provenDnsmasq(paths: DnsmasqPaths): Promise<number | undefined> {
  const text = await readFile(paths.pidFile, 'utf8').catch(() => undefined);
  const pid = text === undefined ? NaN : Number(text.trim());
  if (!Number.isInteger(pid) || pid <= 1) return undefined;
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => undefined);
  if (cmdline === undefined) return undefined;
  const argv = cmdline.split('\0');
  return basename(argv[0] ?? '') === 'dnsmasq' && argv.includes(`--pid-file=${paths.pidFile}`) ? pid : undefined;
}

export async function stopDnsmasq(paths: DnsmasqPaths): Promise<boolean> {
  const pid = await provenDnsmasq(paths);
  if (pid === undefined) return false;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return false;
  }
  for (let i = 0; i < 50 && (await provenDnsmasq(paths)) !== undefined; i++) await new Promise((r) => setTimeout(r, 20));
  return true;
}

export interface Lease {
  expiry: number;
  mac: string;
  ip: string;
  hostname?: string;
  clientId?: string;
}

/** dnsmasq's lease file: `EXPIRY MAC IP HOSTNAME CLIENTID` a line, `*` for none. Bad lines are skipped. */
export function parseLeases(text: string): Lease[] {
  const out: Lease[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4) continue;
    const expiry = Number(f[0]);
    const mac = f[1]!.toLowerCase();
    if (!Number.isInteger(expiry) || !/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(mac) || !/^\d{1,3}(\.\d{1,3}){3}$/.test(f[2]!)) continue;
    out.push({ expiry, mac, ip: f[2]!, ...(f[3] !== '*' ? { hostname: f[3]! } : {}), ...(f[4] && f[4] !== '*' ? { clientId: f[4] } : {}) });
  }
  return out;
}

export async function readLeases(paths: DnsmasqPaths): Promise<Lease[]> {
  return parseLeases(await readFile(paths.leaseFile, 'utf8').catch(() => ''));
}
