/**
 * Network definitions (docs/networks.md): what `net-define` reads (YAML or JSON already
 * parsed to a value) checked and normalized. Every refusal is `network.invalid` naming the
 * field and what was expected. The checks that need the host or the other networks (overlap,
 * a bridge name in use) are made at define and start by the daemon (daemon/networks.ts).
 */
import { VirtkitError } from '../util/errors.js';
import { contains, formatIpv4, lastOf, parseIpv4, parseSubnet, type Subnet } from './subnet.js';

export const NetworkModes = ['nat', 'isolated', 'bridge', 'user'] as const;
export type NetworkMode = (typeof NetworkModes)[number];

export interface NetworkDefinition {
  readonly name: string;
  readonly mode: NetworkMode;
  /** The Linux bridge: made by virtkit for nat/isolated (default `vkbr-NAME`), an existing one for bridge. */
  readonly bridge?: string;
  /** nat/isolated: the subnet, e.g. 192.168.100.0/24; the bridge takes its first address. */
  readonly subnet?: string;
  /** The bridge's (gateway's) address: the subnet's first host address. */
  readonly address?: string;
  readonly dhcp?: { readonly start: string; readonly end: string };
  /** DNS domain handed out by DHCP; guests resolve each other as NAME and NAME.DOMAIN. */
  readonly domain?: string;
}

/** Names become bridge names, nft table names and paths: kept to what all three accept. */
export const NetworkNamePattern = /^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$/;
/** A Linux interface name: 1-15 bytes, no '/', ':' or whitespace. */
const IfNamePattern = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$/;
const DomainPattern = /^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9][A-Za-z0-9-]{0,62})*$/;
const Keys = new Set(['name', 'mode', 'bridge', 'subnet', 'dhcp', 'domain']);

function invalid(field: string, message: string): VirtkitError {
  return new VirtkitError('network.invalid', `${field}: ${message}`, { field });
}

function text(v: unknown, field: string): string {
  if (typeof v !== 'string') throw invalid(field, `must be a string, got ${v === null ? 'null' : typeof v}`);
  return v;
}

export function checkNetworkName(name: string): void {
  if (!NetworkNamePattern.test(name)) throw invalid('name', `must be 1-32 letters, digits, "_" or "-", starting with a letter or digit, got "${name.slice(0, 64)}"`);
}

/** The bridge virtkit makes for a nat/isolated network without one named. */
export function defaultBridgeName(name: string): string {
  return `vkbr-${name}`.slice(0, 15);
}

function isMode(v: string): v is NetworkMode {
  return (NetworkModes as readonly string[]).includes(v);
}

/** Checks and normalizes one definition. */
export function parseNetworkDefinition(input: unknown): NetworkDefinition {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw invalid('(root)', 'must be a mapping with name and mode');
  const o = input as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!Keys.has(k)) throw invalid(k, `unknown field (known: ${[...Keys].join(', ')})`);
  const name = text(o['name'], 'name');
  checkNetworkName(name);
  const modeText = text(o['mode'] ?? 'nat', 'mode');
  if (!isMode(modeText)) throw invalid('mode', `must be one of ${NetworkModes.join(', ')}, got "${modeText.slice(0, 32)}"`);
  const mode = modeText;
  const bridge = o['bridge'] === undefined ? undefined : text(o['bridge'], 'bridge');
  if (bridge !== undefined && !IfNamePattern.test(bridge)) throw invalid('bridge', `must be an interface name of 1-15 letters, digits, "_", "." or "-", got "${bridge.slice(0, 32)}"`);
  if (name === 'user') throw invalid('name', '"user" names QEMU\'s user networking in a NIC definition; choose another name');
  if (mode === 'user' || mode === 'bridge') {
    for (const k of ['subnet', 'dhcp', 'domain']) if (o[k] !== undefined) throw invalid(k, `not used by a ${mode} network (virtkit runs no DHCP there)`);
    if (mode === 'user') {
      if (bridge !== undefined) throw invalid('bridge', 'not used by a user network');
      return { name, mode };
    }
    if (bridge === undefined) throw invalid('bridge', 'a bridge network names an existing host bridge');
    return { name, mode, bridge };
  }
  const subnetText = text(o['subnet'], 'subnet');
  const subnet: Subnet = parseSubnet(subnetText);
  if (subnet.prefix > 29 || subnet.prefix < 8) throw invalid('subnet', `prefix must be between /8 and /29 (room for the bridge and guests), got /${subnet.prefix}`);
  const address = subnet.base + 1;
  const last = lastOf(subnet) - 1;
  let dhcp = { start: formatIpv4(address + 1), end: formatIpv4(last) };
  if (o['dhcp'] !== undefined) {
    const d = o['dhcp'];
    if (typeof d !== 'object' || d === null || Array.isArray(d)) throw invalid('dhcp', 'must be a mapping with start and end');
    const dr = d as Record<string, unknown>;
    for (const k of Object.keys(dr)) if (k !== 'start' && k !== 'end') throw invalid(`dhcp.${k}`, 'unknown field (known: start, end)');
    const start = parseIpv4(text(dr['start'], 'dhcp.start'));
    const end = parseIpv4(text(dr['end'], 'dhcp.end'));
    if (start === undefined) throw invalid('dhcp.start', `must be an IPv4 address, got "${String(dr['start']).slice(0, 32)}"`);
    if (end === undefined) throw invalid('dhcp.end', `must be an IPv4 address, got "${String(dr['end']).slice(0, 32)}"`);
    for (const [k, v] of [['dhcp.start', start], ['dhcp.end', end]] as const) {
      if (!contains(subnet, v) || v <= address || v > last) {
        throw invalid(k, `${formatIpv4(v)} is outside ${subnetText}'s guest addresses (${formatIpv4(address + 1)}-${formatIpv4(last)}; ${formatIpv4(address)} is the bridge's)`);
      }
    }
    if (start > end) throw invalid('dhcp', `start ${formatIpv4(start)} is after end ${formatIpv4(end)}`);
    dhcp = { start: formatIpv4(start), end: formatIpv4(end) };
  }
  let domain: string | undefined;
  if (o['domain'] !== undefined) {
    domain = text(o['domain'], 'domain');
    if (domain.length > 253 || !DomainPattern.test(domain)) throw invalid('domain', `must be a DNS domain like vm.test, got "${domain.slice(0, 64)}"`);
  }
  return {
    name, mode, bridge: bridge ?? defaultBridgeName(name), subnet: subnetText, address: formatIpv4(address), dhcp, ...(domain ? { domain } : {}),
  };
}
