/**
 * The host tap device of a guest NIC on a virtkit network. Linux interface names hold 15
 * bytes (IFNAMSIZ 16 with the NUL), too few for a domain name and a NIC id, so the name is
 * `vk` + 12 hex digits of a hash of both: short, stable across restarts (reconciliation and
 * the argv builder derive the same name without asking anyone), and unlikely to meet a name
 * an administrator chose. Pure, so the command-line builder may use it.
 */
import { createHash } from 'node:crypto';

export const TapPrefix = 'vk';

export function tapName(domain: string, nicId: string): string {
  return TapPrefix + createHash('sha256').update(`${domain}\0${nicId}`).digest('hex').slice(0, 12);
}

/** The alias set on each tap: what proves it ours and names its owner (`ip link` shows it). */
export function tapAlias(domain: string, nicId: string): string {
  return `virtkit:${domain}:${nicId}`;
}

/** The owner named by an alias of ours, or undefined for anything else. */
export function parseTapAlias(alias: string | undefined): { domain: string; nicId: string } | undefined {
  if (!alias?.startsWith('virtkit:')) return undefined;
  const rest = alias.slice('virtkit:'.length);
  const cut = rest.lastIndexOf(':');
  if (cut <= 0 || cut === rest.length - 1) return undefined;
  return { domain: rest.slice(0, cut), nicId: rest.slice(cut + 1) };
}
