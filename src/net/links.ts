/**
 * Bridges, taps and routes through `ip`: what exists, making and removing our bridges and
 * taps. A tap of ours carries an alias (util/tap-name.ts) that names its domain and NIC; a
 * bridge of ours carries `virtkit-net:NAME`. Nothing without such an alias is ever removed.
 */
import { parseTapAlias, tapAlias } from '../util/tap-name.js';
import { ipJson, runTool } from './host.js';

export interface LinkInfo {
  ifname: string;
  ifalias?: string;
  master?: string;
  operstate?: string;
  address?: string;
  linkinfo?: { info_kind?: string };
}

export async function listLinks(): Promise<LinkInfo[]> {
  return ipJson<LinkInfo>(['-d', 'link', 'show']);
}

export async function linkNamed(name: string): Promise<LinkInfo | undefined> {
  return (await listLinks()).find((l) => l.ifname === name);
}

export function bridgeAlias(network: string): string {
  return `virtkit-net:${network}`;
}

/** Makes the bridge of a nat/isolated network, with its address, up. Removed whole on failure. */
export async function createBridge(name: string, network: string, addressCidr: string): Promise<void> {
  await runTool('ip', ['link', 'add', 'name', name, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0']);
  try {
    await runTool('ip', ['link', 'set', 'dev', name, 'alias', bridgeAlias(network)]);
    await runTool('ip', ['addr', 'add', addressCidr, 'dev', name]);
    await runTool('ip', ['link', 'set', 'dev', name, 'up']);
  } catch (err) {
    await runTool('ip', ['link', 'del', 'dev', name]).catch(() => undefined);
    throw err;
  }
}

/** Removes a bridge only if it is the one we made for this network. */
export async function deleteOurBridge(name: string, network: string): Promise<boolean> {
  const link = await linkNamed(name);
  if (!link || link.ifalias !== bridgeAlias(network)) return false;
  await runTool('ip', ['link', 'del', 'dev', name]);
  return true;
}

export async function createTap(name: string, domain: string, nicId: string, bridge: string, mac?: string): Promise<void> {
  // A tap of a guest that died unwatched may still be there: ours by alias, so replaced.
  const old = await linkNamed(name);
  if (old) {
    if (parseTapAlias(old.ifalias)) await runTool('ip', ['link', 'del', 'dev', name]);
    else throw new Error(`interface ${name} exists and is not virtkit's`);
  }
  await runTool('ip', ['tuntap', 'add', 'dev', name, 'mode', 'tap', 'vnet_hdr']);
  try {
    await runTool('ip', ['link', 'set', 'dev', name, 'alias', tapAlias(domain, nicId)]);
    // The host side of the tap gets a MAC of its own (fe:... as libvirt does) so the bridge never takes the guest's.
    if (mac) await runTool('ip', ['link', 'set', 'dev', name, 'address', `fe${mac.slice(2)}`]);
    await runTool('ip', ['link', 'set', 'dev', name, 'master', bridge]);
    await runTool('ip', ['link', 'set', 'dev', name, 'up']);
  } catch (err) {
    await runTool('ip', ['link', 'del', 'dev', name]).catch(() => undefined);
    throw err;
  }
}

/** Removes a tap when it is ours (alias), tolerating it gone already. */
export async function deleteTap(name: string): Promise<boolean> {
  const link = await linkNamed(name);
  if (!link || !parseTapAlias(link.ifalias)) return false;
  await runTool('ip', ['link', 'del', 'dev', name]).catch(() => undefined);
  return true;
}

/** Every tap of ours on the host, with the domain and NIC its alias names. */
export async function listOurTaps(): Promise<{ ifname: string; domain: string; nicId: string }[]> {
  return (await listLinks()).flatMap((l) => {
    const owner = parseTapAlias(l.ifalias);
    return owner ? [{ ifname: l.ifname, ...owner }] : [];
  });
}

export interface RouteInfo {
  dst: string;
  dev?: string;
}

/** The host's IPv4 routes (main table), `default` included. */
export async function listRoutes(): Promise<RouteInfo[]> {
  return ipJson<RouteInfo>(['-4', 'route', 'show']);
}
