/**
 * IPv4 subnet arithmetic for network definitions: parsing `a.b.c.d/len`, membership and
 * overlap. Addresses are unsigned 32-bit numbers.
 */
import { VirtkitError } from '../util/errors.js';

export interface Subnet {
  /** The network address (host bits zero). */
  readonly base: number;
  readonly prefix: number;
}

export function parseIpv4(text: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return undefined;
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

export function formatIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** A subnet from `a.b.c.d/len`; host bits must be zero (as `ip route` prints it). */
export function parseSubnet(text: string, field = 'subnet'): Subnet {
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(text);
  const addr = m ? parseIpv4(m[1]!) : undefined;
  const prefix = m ? Number(m[2]) : NaN;
  if (addr === undefined || !(prefix >= 0 && prefix <= 32)) {
    throw new VirtkitError('network.invalid', `${field}: must be an IPv4 subnet like 192.168.100.0/24, got "${text.slice(0, 64)}"`, { field });
  }
  if ((addr & ~maskOf(prefix)) >>> 0 !== 0) {
    throw new VirtkitError('network.invalid', `${field}: "${text}" has host bits set; the subnet is ${formatIpv4((addr & maskOf(prefix)) >>> 0)}/${prefix}`, { field });
  }
  return { base: addr, prefix };
}

export function formatSubnet(s: Subnet): string {
  return `${formatIpv4(s.base)}/${s.prefix}`;
}

export function contains(s: Subnet, addr: number): boolean {
  return ((addr & maskOf(s.prefix)) >>> 0) === s.base;
}

export function overlaps(a: Subnet, b: Subnet): boolean {
  const prefix = Math.min(a.prefix, b.prefix);
  return ((a.base & maskOf(prefix)) >>> 0) === ((b.base & maskOf(prefix)) >>> 0);
}

/** The broadcast address (the last of the subnet). */
export function lastOf(s: Subnet): number {
  return (s.base | (~maskOf(s.prefix) >>> 0)) >>> 0;
}
