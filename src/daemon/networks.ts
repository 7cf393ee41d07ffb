/**
 * Networks in the daemon (docs/networks.md): definitions in the store under
 * `/network/NAME/{definition,autostart,active}`, the host side made by net/ (bridge, nftables
 * table, dnsmasq), and the guests' taps. The host side outlives the daemon like QEMU does:
 * at the next start an active network is adopted as it is (its dnsmasq proven ours by pid
 * file and cmdline), and the taps of domains that are not running any more are removed.
 *
 * The manager calls `prepareNics` before a guest's QEMU starts (taps made, `vhost: auto`
 * resolved, MACs checked) and `releaseNics` on every exit it sees.
 */
import { existsSync, watch, type FSWatcher } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyBaseLogger, FastifyRequest } from 'fastify';
import type {
  InterfaceAddress, NetworkAutostartBody, NetworkDefineBody, NetworkDestroyBody, NetworkInfo, NetworkLease, NetworkListQuery,
  NetworkMethods, NetworkParams,
} from '../api/index.js';
import type { DomainDefinition, NicDefinition } from '../conf/index.js';
import {
  applyBandwidth, applyNftTable, checkNetworkName, contains, createBridge, createTap, deleteOurBridge, deleteTap, dnsmasqPaths,
  linkNamed, listOurTaps, listRoutes, noPolicerError, overlaps, parseIpv4, policerAvailable, parseNetworkDefinition, parseRate, parseSubnet, provenDnsmasq,
  readLeases, removeNftTable, runTool, startDnsmasq, stopDnsmasq, type NetworkDefinition,
} from '../net/index.js';
import { withRetry, type Origin, type Store, type StoreReader, type Transaction } from '../store/index.js';
import { VirtkitError, errorMessage } from '../util/errors.js';
import { tapName } from '../util/tap-name.js';
import { isActive, listDomainNames, readDomain } from './domain-records.js';
import { recordEvent } from './event-log.js';
import { KeyedMutex } from './keyed-mutex.js';

const NetworkRoot = '/network';
const netPath = (name: string, leaf?: string): string => (leaf ? `${NetworkRoot}/${name}/${leaf}` : `${NetworkRoot}/${name}`);
const VhostDevice = '/dev/vhost-net';

type Handler = (req: FastifyRequest, origin: Origin) => Promise<unknown>;

interface NetworkRecord {
  def: NetworkDefinition;
  autostart: boolean;
  /** What the store says: started and not destroyed since. */
  active: boolean;
}

async function readNetwork(r: StoreReader, name: string): Promise<NetworkRecord | undefined> {
  const text = await r.read(netPath(name, 'definition'));
  if (text === undefined) return undefined;
  return {
    def: JSON.parse(text) as NetworkDefinition,
    autostart: (await r.read(netPath(name, 'autostart'))) === '1',
    active: (await r.read(netPath(name, 'active'))) === '1',
  };
}

async function requireNetwork(r: StoreReader, name: string): Promise<NetworkRecord> {
  const rec = await readNetwork(r, name);
  if (!rec) throw new VirtkitError('network.not-found', `no network named "${name}"`, { network: name });
  return rec;
}

async function listNetworkNames(r: StoreReader): Promise<string[]> {
  return (await r.list(NetworkRoot)) ?? [];
}

/** The NICs of running domains, by domain, from what each runs with. */
async function activeNics(r: StoreReader): Promise<{ domain: string; nics: NicDefinition[] }[]> {
  const out: { domain: string; nics: NicDefinition[] }[] = [];
  for (const name of await listDomainNames(r)) {
    const rec = await readDomain(r, name);
    if (rec && isActive(rec.status)) out.push({ domain: name, nics: (rec.live ?? rec.definition).nics });
  }
  return out;
}

/** A host name from a lease as an event shows it: dnsmasq keeps only legal names, and this keeps only their letters. */
function leaseHostname(name: string | undefined): string {
  const clean = (name ?? '').replace(/[^A-Za-z0-9.-]/g, '').slice(0, 63);
  return clean ? ` ${clean}` : '';
}

/**
 * At define: a NIC on a virtkit network may not have the MAC of another domain's NIC on one
 * (they may share a bridge, and the host's taps and leases are keyed by MAC). User NICs are
 * each behind their own QEMU NAT, so theirs may repeat.
 */
export async function checkNetworkMacs(r: StoreReader, def: DomainDefinition): Promise<void> {
  const mine = def.nics.filter((n) => n.network !== 'user');
  if (mine.length === 0) return;
  for (const other of await listDomainNames(r)) {
    if (other === def.name) continue;
    const rec = await readDomain(r, other);
    for (const n of [...(rec?.definition.nics ?? []), ...(rec?.live?.nics ?? [])]) {
      if (n.network === 'user') continue;
      const clash = mine.find((m) => m.mac === n.mac);
      if (clash) {
        throw new VirtkitError('definition.invalid', `nics: MAC ${clash.mac} of NIC "${clash.id}" is domain "${other}"'s (NIC ${n.id} on network ${n.network}); MACs on virtkit networks are unique across the host`,
          { field: 'nics.mac', domain: other });
      }
    }
  }
}

export class NetworkService {
  private readonly locks = new KeyedMutex();
  /** Lease files watched for new leases (a `net-lease` event each), by network. */
  private readonly leaseWatches = new Map<string, { watcher: FSWatcher; seen: Set<string>; timer?: NodeJS.Timeout }>();

  constructor(private readonly store: Store, private readonly stateDir: string, private readonly log: FastifyBaseLogger) {}

  private tx<T>(origin: Origin, fn: (tx: Transaction) => Promise<T>): Promise<T> {
    const store = this.store.as(origin);
    return withRetry(() => store.transaction(fn), { attempts: 9, backoffMs: 0 });
  }

  private dirOf(name: string): string {
    return join(this.stateDir, 'networks', name);
  }

  // ---- objects ----------------------------------------------------------------------------

  async define(origin: Origin, body: NetworkDefineBody): Promise<NetworkInfo> {
    const def = parseNetworkDefinition(body.definition);
    return this.locks.run(def.name, async () => {
      await this.tx(origin, async (tx) => {
        if (await readNetwork(tx, def.name)) throw new VirtkitError('network.exists', `a network named "${def.name}" is defined`, { network: def.name });
        await this.checkAgainstOthers(tx, def);
        await tx.write(netPath(def.name, 'definition'), JSON.stringify(def));
        await tx.write(netPath(def.name, 'autostart'), '0');
      });
      return this.info(origin, def.name);
    });
  }

  /** A second network on an overlapping subnet or the same bridge is refused (defined ones, active or not). */
  private async checkAgainstOthers(r: StoreReader, def: NetworkDefinition): Promise<void> {
    for (const other of await listNetworkNames(r)) {
      if (other === def.name) continue;
      const o = await readNetwork(r, other);
      if (!o) continue;
      if (def.subnet && o.def.subnet && overlaps(parseSubnet(def.subnet), parseSubnet(o.def.subnet))) {
        throw new VirtkitError('network.exists', `subnet ${def.subnet} overlaps network "${other}"'s ${o.def.subnet}`, { field: 'subnet', network: other });
      }
      if (def.mode !== 'bridge' && def.bridge && def.bridge === o.def.bridge) {
        throw new VirtkitError('network.exists', `bridge ${def.bridge} is network "${other}"'s`, { field: 'bridge', network: other });
      }
    }
  }

  async undefine(origin: Origin, name: string): Promise<void> {
    checkNetworkName(name);
    await this.locks.run(name, async () => {
      const rec = await requireNetwork(this.store.as(origin), name);
      if (rec.active) throw new VirtkitError('network.in-use', `network "${name}" is active: net-destroy it first`, { network: name });
      await this.tx(origin, async (tx) => { await tx.rm(netPath(name)); });
      await rm(this.dirOf(name), { recursive: true, force: true });
    });
  }

  async setAutostart(origin: Origin, name: string, enabled: boolean): Promise<NetworkInfo> {
    checkNetworkName(name);
    await this.tx(origin, async (tx) => {
      await requireNetwork(tx, name);
      await tx.write(netPath(name, 'autostart'), enabled ? '1' : '0');
    });
    return this.info(origin, name);
  }

  async list(origin: Origin, query: NetworkListQuery): Promise<NetworkInfo[]> {
    const r = this.store.as(origin);
    const infos = await Promise.all((await listNetworkNames(r)).map((n) => this.info(origin, n)));
    return infos.filter((i) => query.all === true || i.active).sort((a, b) => a.name.localeCompare(b.name));
  }

  async info(origin: Origin, name: string): Promise<NetworkInfo> {
    checkNetworkName(name);
    const r = this.store.as(origin);
    const rec = await requireNetwork(r, name);
    const pid = rec.active && (rec.def.mode === 'nat' || rec.def.mode === 'isolated') ? await provenDnsmasq(dnsmasqPaths(this.dirOf(name))) : undefined;
    const domains = (await activeNics(r)).filter((a) => a.nics.some((n) => n.network === name)).map((a) => a.domain);
    return {
      name, mode: rec.def.mode, active: rec.active, autostart: rec.autostart, ...(rec.def.bridge ? { bridge: rec.def.bridge } : {}),
      definition: rec.def, ...(pid !== undefined ? { dnsmasqPid: pid } : {}), domains,
    };
  }

  // ---- start and stop ---------------------------------------------------------------------

  async start(origin: Origin, name: string): Promise<NetworkInfo> {
    checkNetworkName(name);
    await this.locks.run(name, async () => {
      const rec = await requireNetwork(this.store.as(origin), name);
      if (rec.active) throw new VirtkitError('network.exists', `network "${name}" is already active`, { network: name });
      await this.bringUp(rec.def);
      if (rec.def.mode === 'nat' || rec.def.mode === 'isolated') await this.watchLeases(name);
      await this.rejoinTaps(name, rec.def.bridge);
      await this.tx(origin, async (tx) => {
        await tx.write(netPath(name, 'active'), '1');
        await recordEvent(tx, 'net-started', { name, uuid: '' }, rec.def.mode);
      });
      this.log.info({ network: name, mode: rec.def.mode, bridge: rec.def.bridge }, 'network started');
    });
    return this.info(origin, name);
  }

  /** The host side of a network; nothing of it is left when a step fails. */
  private async bringUp(def: NetworkDefinition): Promise<void> {
    if (def.mode === 'user') return;
    if (def.mode === 'bridge') {
      const link = await linkNamed(def.bridge!);
      if (link?.linkinfo?.info_kind !== 'bridge') {
        throw new VirtkitError('network.invalid', `bridge: host bridge ${def.bridge!} ${link ? 'is not a bridge' : 'does not exist'} (a bridge network joins guests to an existing bridge)`, { field: 'bridge' });
      }
      return;
    }
    if (await linkNamed(def.bridge!)) throw new VirtkitError('network.exists', `bridge: interface ${def.bridge!} exists on the host already`, { field: 'bridge' });
    const subnet = parseSubnet(def.subnet!);
    for (const route of await listRoutes()) {
      if (route.dst === 'default') continue;
      const dst = route.dst.includes('/') ? route.dst : `${route.dst}/32`;
      let routed;
      try {
        routed = parseSubnet(dst);
      } catch {
        continue;
      }
      if (overlaps(subnet, routed)) {
        throw new VirtkitError('network.exists', `subnet ${def.subnet!} overlaps the host route ${route.dst}${route.dev ? ` (dev ${route.dev})` : ''}`, { field: 'subnet', route: route.dst });
      }
    }
    const paths = dnsmasqPaths(this.dirOf(def.name));
    await mkdir(paths.dir, { recursive: true, mode: 0o755 });
    await createBridge(def.bridge!, def.name, `${def.address!}/${subnet.prefix}`);
    try {
      await applyNftTable(def);
      // Forwarding is per network namespace: the host (or the namespace a test made) routes for NAT.
      if (def.mode === 'nat') await runTool('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
      await startDnsmasq(def, paths);
    } catch (err) {
      await this.tearDown(def);
      throw err;
    }
  }

  /**
   * Running guests cut off by a forced net-destroy keep their taps: a new start of the network
   * joins them to its bridge again.
   */
  private async rejoinTaps(name: string, bridge: string | undefined): Promise<void> {
    if (bridge === undefined) return;
    const users = await activeNics(this.store);
    for (const tap of await listOurTaps()) {
      const nic = users.find((u) => u.domain === tap.domain)?.nics.find((n) => n.id === tap.nicId);
      if (nic?.network !== name) continue;
      await runTool('ip', ['link', 'set', 'dev', tap.ifname, 'master', bridge])
        .catch((err: unknown) => this.log.warn({ network: name, tap: tap.ifname, err: errorMessage(err) }, 'rejoining a tap failed'));
    }
  }

  private async tearDown(def: NetworkDefinition): Promise<void> {
    if (def.mode !== 'nat' && def.mode !== 'isolated') return;
    this.unwatchLeases(def.name);
    await stopDnsmasq(dnsmasqPaths(this.dirOf(def.name)));
    await removeNftTable(def.name);
    await deleteOurBridge(def.bridge!, def.name);
  }

  async destroy(origin: Origin, name: string, body: NetworkDestroyBody): Promise<NetworkInfo> {
    checkNetworkName(name);
    await this.locks.run(name, async () => {
      const r = this.store.as(origin);
      const rec = await requireNetwork(r, name);
      if (!rec.active) throw new VirtkitError('network.invalid-state', `network "${name}" is not active (net-start ${name})`, { network: name, active: false });
      const users = (await activeNics(r)).filter((a) => a.nics.some((n) => n.network === name)).map((a) => a.domain);
      if (users.length > 0 && body.force !== true) {
        throw new VirtkitError('network.in-use', `network "${name}" is used by running domains: ${users.join(', ')} (--force cuts them off)`, { network: name, domains: users });
      }
      await this.tearDown(rec.def);
      await this.tx(origin, async (tx) => {
        await tx.write(netPath(name, 'active'), '0');
        await recordEvent(tx, 'net-stopped', { name, uuid: '' }, users.length > 0 ? `forced; cut off ${users.join(',')}` : 'destroyed');
      });
      this.log.info({ network: name, cutOff: users }, 'network stopped');
    });
    return this.info(origin, name);
  }

  // ---- leases -----------------------------------------------------------------------------

  /**
   * Watches a network's lease file (its directory: dnsmasq creates the file) and records a
   * `net-lease` event for each lease not seen before (`IP MAC [HOSTNAME]`). The leases there
   * when the watch begins are not announced again. The watcher does not hold the daemon up.
   */
  private async watchLeases(name: string): Promise<void> {
    if (this.leaseWatches.has(name)) return;
    const paths = dnsmasqPaths(this.dirOf(name));
    const key = (l: { mac: string; ip: string }): string => `${l.mac} ${l.ip}`;
    const seen = new Set((await readLeases(paths)).map(key));
    const check = async (): Promise<void> => {
      for (const lease of await readLeases(paths)) {
        if (seen.has(key(lease))) continue;
        seen.add(key(lease));
        await this.tx({}, (tx) => recordEvent(tx, 'net-lease', { name, uuid: '' }, `${lease.ip} ${lease.mac}${leaseHostname(lease.hostname)}`));
      }
    };
    const entry: { watcher: FSWatcher; seen: Set<string>; timer?: NodeJS.Timeout } = {
      seen,
      watcher: watch(paths.dir, (_event, file) => {
        if (file !== null && !String(file).startsWith('dnsmasq.leases')) return;
        // dnsmasq rewrites the file in a few writes: read it once they settled.
        clearTimeout(entry.timer);
        entry.timer = setTimeout(() => {
          check().catch((err: unknown) => this.log.warn({ network: name, err: errorMessage(err) }, 'reading the leases failed'));
        }, 100);
        entry.timer.unref();
      }),
    };
    entry.watcher.unref();
    entry.watcher.on('error', () => this.unwatchLeases(name));
    this.leaseWatches.set(name, entry);
  }

  private unwatchLeases(name: string): void {
    const entry = this.leaseWatches.get(name);
    if (!entry) return;
    clearTimeout(entry.timer);
    entry.watcher.close();
    this.leaseWatches.delete(name);
  }

  async leases(origin: Origin, name: string): Promise<NetworkLease[]> {
    checkNetworkName(name);
    const r = this.store.as(origin);
    const rec = await requireNetwork(r, name);
    if (rec.def.mode !== 'nat' && rec.def.mode !== 'isolated') return [];
    const prefix = parseSubnet(rec.def.subnet!).prefix;
    const owners = new Map<string, { domain: string; nic: string }>();
    for (const d of await listDomainNames(r)) {
      const dr = await readDomain(r, d);
      for (const n of (dr?.live ?? dr?.definition)?.nics ?? []) owners.set(n.mac, { domain: d, nic: n.id });
    }
    return (await readLeases(dnsmasqPaths(this.dirOf(name)))).map((l) => {
      const owner = owners.get(l.mac);
      return { ...l, prefix, ...(owner ? { domain: owner.domain, nic: owner.nic } : {}) };
    });
  }

  async domainAddresses(origin: Origin, domain: string): Promise<InterfaceAddress[]> {
    const r = this.store.as(origin);
    const rec = await readDomain(r, domain);
    if (!rec) throw new VirtkitError('domain.not-found', `no domain named "${domain}"`, { name: domain });
    const def = rec.live ?? rec.definition;
    const out: InterfaceAddress[] = [];
    for (const nic of def.nics) {
      const base = { nic: nic.id, mac: nic.mac, network: nic.network };
      const net = nic.network === 'user' ? undefined : await readNetwork(r, nic.network);
      if (!net || net.def.mode === 'user') {
        out.push({ ...base, source: 'none' });
        continue;
      }
      const tap = tapName(domain, nic.id);
      const lease = net.def.mode === 'bridge' ? undefined
        : (await this.leases(origin, nic.network)).filter((l) => l.mac === nic.mac).sort((a, b) => b.expiry - a.expiry)[0];
      const vhost = rec.live && (nic.vhost === 'on' || nic.vhost === 'off') ? { vhost: nic.vhost } : {};
      out.push({ ...base, tap, ...vhost, ...(lease ? { address: `${lease.ip}/${lease.prefix}`, source: 'lease' as const } : { source: 'none' as const }) });
    }
    return out;
  }

  // ---- guests' taps -----------------------------------------------------------------------

  /**
   * Before a guest's QEMU starts: its NICs on virtkit networks get their taps, joined to the
   * network's bridge, limited by their bandwidth. Returns the definition QEMU is started with:
   * a NIC on a `user`-mode network becomes a user NIC, `vhost: auto` becomes on or off. On
   * failure every tap made here is removed again.
   */
  async prepareNics(domain: string, def: DomainDefinition): Promise<DomainDefinition> {
    if (def.nics.every((n) => n.network === 'user')) return def;
    const r = this.store;
    const others = (await activeNics(r)).filter((a) => a.domain !== domain);
    const nics: NicDefinition[] = [];
    const made: string[] = [];
    try {
      for (const nic of def.nics) {
        if (nic.network === 'user') {
          nics.push(nic);
          continue;
        }
        const net = await readNetwork(r, nic.network);
        if (!net) throw new VirtkitError('network.not-found', `nics: NIC "${nic.id}" names network "${nic.network}", which is not defined`, { nic: nic.id, network: nic.network });
        if (net.def.mode === 'user') {
          nics.push({ ...nic, network: 'user' });
          continue;
        }
        if (!net.active) throw new VirtkitError('network.not-found', `nics: network "${nic.network}" of NIC "${nic.id}" is not active (net-start ${nic.network})`, { nic: nic.id, network: nic.network });
        const clash = others.find((o) => o.nics.some((n) => n.mac === nic.mac));
        if (clash) throw new VirtkitError('definition.invalid', `nics: MAC ${nic.mac} of NIC "${nic.id}" is used by running domain "${clash.domain}"`, { field: 'nics.mac', domain: clash.domain });
        const hasVhost = existsSync(VhostDevice);
        if (nic.vhost === 'on' && !hasVhost) {
          throw new VirtkitError('operation.unsupported', `nics: NIC "${nic.id}" asks for vhost: on, but ${VhostDevice} does not exist on this host (load vhost_net, or use vhost: auto or off)`, { nic: nic.id, field: 'vhost' });
        }
        if (nic.bandwidth?.inbound) parseRate(nic.bandwidth.inbound, 'bandwidth.inbound');
        if (nic.bandwidth?.outbound) parseRate(nic.bandwidth.outbound, 'bandwidth.outbound');
        // Before the tap: a refusal here leaves nothing to undo.
        if (nic.bandwidth?.outbound !== undefined && !policerAvailable()) throw noPolicerError(nic.id);
        const tap = tapName(domain, nic.id);
        await createTap(tap, domain, nic.id, net.def.bridge!, nic.mac);
        made.push(tap);
        if (nic.bandwidth) await applyBandwidth(tap, nic.bandwidth, nic.id);
        nics.push({ ...nic, vhost: nic.vhost === 'off' || !hasVhost ? 'off' : 'on' });
      }
    } catch (err) {
      for (const tap of made) await deleteTap(tap).catch(() => undefined);
      throw err;
    }
    return { ...def, nics };
  }

  /** After a NIC was unplugged: its tap goes. */
  async releaseNic(domain: string, nicId: string): Promise<void> {
    await deleteTap(tapName(domain, nicId)).catch((err: unknown) => this.log.warn({ domain, nicId, err: errorMessage(err) }, 'removing a tap failed'));
  }

  /** After a guest's QEMU is gone (any way): its taps go. */
  async releaseNics(domain: string): Promise<void> {
    for (const tap of await listOurTaps()) {
      if (tap.domain !== domain) continue;
      await deleteTap(tap.ifname).catch((err: unknown) => this.log.warn({ domain, tap: tap.ifname, err: errorMessage(err) }, 'removing a tap failed'));
    }
  }

  /**
   * At daemon start, after the guests were adopted: taps whose domain does not run are
   * removed, active networks are adopted (a dead dnsmasq is restarted, a missing bridge makes
   * the network inactive), and, at the first daemon start after a host boot (as for domains:
   * a network destroyed on purpose stays down across daemon restarts), autostart networks start.
   */
  async reconcile(running: readonly string[], opts: { firstStartAfterBoot: boolean }): Promise<{ tapsRemoved: string[]; autostarted: string[] }> {
    const report = { tapsRemoved: [] as string[], autostarted: [] as string[] };
    const live = new Set(running);
    for (const tap of await listOurTaps().catch(() => [])) {
      if (live.has(tap.domain)) continue;
      if (await deleteTap(tap.ifname).catch(() => false)) report.tapsRemoved.push(tap.ifname);
    }
    for (const name of await listNetworkNames(this.store)) {
      const rec = await readNetwork(this.store, name);
      if (!rec) continue;
      let active = rec.active;
      try {
        if (rec.active && (rec.def.mode === 'nat' || rec.def.mode === 'isolated')) {
          if (!(await linkNamed(rec.def.bridge!))) {
            active = false;
            await this.tearDown(rec.def);
            await this.tx({}, async (tx) => {
              await tx.write(netPath(name, 'active'), '0');
              await recordEvent(tx, 'net-stopped', { name, uuid: '' }, 'bridge gone');
            });
            this.log.warn({ network: name }, 'network bridge gone at daemon start: network inactive');
          } else if ((await provenDnsmasq(dnsmasqPaths(this.dirOf(name)))) === undefined) {
            await startDnsmasq(rec.def, dnsmasqPaths(this.dirOf(name)));
            this.log.warn({ network: name }, 'network dnsmasq was gone: restarted');
          }
          if (active) await this.watchLeases(name);
        }
        if (!active && rec.autostart && opts.firstStartAfterBoot) {
          await this.start({ client: 'autostart' }, name);
          report.autostarted.push(name);
        }
      } catch (err) {
        this.log.warn({ network: name, err: errorMessage(err) }, 'network reconciliation failed');
      }
    }
    return report;
  }
}

/** Whether an address lies in a network's subnet (used by tests and the docs' examples). */
export function inSubnet(subnet: string, address: string): boolean {
  const a = parseIpv4(address);
  return a !== undefined && contains(parseSubnet(subnet), a);
}

type NetworkMethodName = keyof typeof NetworkMethods;

export function networkHandlers(s: NetworkService | undefined): Record<NetworkMethodName, Handler> {
  const svc = (): NetworkService => {
    if (!s) throw new VirtkitError('operation.unsupported', 'this daemon manages no networks', {});
    return s;
  };
  const p = (req: FastifyRequest): string => (req.params as NetworkParams).network;
  return {
    'network.list': async (req, o) => ({ networks: await svc().list(o, req.query as NetworkListQuery) }),
    'network.define': (req, o) => svc().define(o, req.body as NetworkDefineBody),
    'network.info': (req, o) => svc().info(o, p(req)),
    'network.start': (req, o) => svc().start(o, p(req)),
    'network.destroy': (req, o) => svc().destroy(o, p(req), (req.body ?? {}) as NetworkDestroyBody),
    'network.undefine': async (req, o) => { await svc().undefine(o, p(req)); return { ok: true }; },
    'network.setAutostart': (req, o) => svc().setAutostart(o, p(req), (req.body as NetworkAutostartBody).enabled),
    'network.leases': async (req, o) => ({ network: p(req), leases: await svc().leases(o, p(req)) }),
    'network.domainAddresses': async (req, o) => ({ interfaces: await svc().domainAddresses(o, (req.params as { name: string }).name) }),
  };
}
