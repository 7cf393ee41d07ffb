/**
 * How domains are laid out in the store, and typed access to them inside a transaction.
 *
 *   /domain/<name>/uuid         the domain's UUID
 *   /domain/<name>/definition   the saved definition (what the next start uses), normalized, JSON
 *   /domain/<name>/live         while it runs: the definition its QEMU runs, JSON (written with the
 *                               running status, removed when it stops)
 *   /domain/<name>/status       runtime status, JSON (DomainStatus)
 *   /domain/<name>/autostart    'true' | 'false'
 *   /domain/<name>/tainted      JSON array of taint reasons
 *   /uuid/<uuid>                the name owning a UUID (keeps UUIDs unique)
 *   /host/boot-id               the boot id autostart last ran for
 *   /event                      one write per domain event (see event-log.ts)
 */
import { isDeepStrictEqual } from 'node:util';
import type { DomainState, StopReason } from '../api/index.js';
import type { DomainDefinition } from '../conf/index.js';
import type { StoreReader, StoreWriter } from '../store/index.js';
import { VirtkitError } from '../util/errors.js';

/**
 * The runtime status a domain's record carries. `starting` is written, with the run dir,
 * before QEMU is spawned: a daemon that dies mid-start finds the run dir at restart and either
 * adopts the QEMU in it or records the start as failed; a QEMU the store does not know of
 * cannot exist.
 */
export type DomainStatus =
  | { state: 'shutoff'; reason?: StopReason; runDir?: string }
  | { state: 'crashed'; reason: 'crashed'; runDir?: string }
  | { state: 'starting'; runDir: string }
  | { state: 'running' | 'paused'; runDir: string; pid: number; accel: string };

export type StoredState = DomainStatus['state'];

/** What users see: `starting` shows as shutoff (the start call has not returned yet). */
export function visibleState(status: DomainStatus): DomainState {
  return status.state === 'starting' ? 'shutoff' : status.state;
}

/**
 * The state a precondition is checked against: a domain still `starting` counts as running
 * (what needs it shut off must wait for the start to end; what needs it running finds no
 * guest to act on yet, and is refused as not running).
 */
export function preconditionState(status: DomainStatus): DomainState {
  return status.state === 'starting' ? 'running' : status.state;
}

export function isActive(status: DomainStatus): boolean {
  return status.state === 'starting' || status.state === 'running' || status.state === 'paused';
}

export const domainPath = (name: string, leaf?: string): string => (leaf ? `/domain/${name}/${leaf}` : `/domain/${name}`);
export const uuidPath = (uuid: string): string => `/uuid/${uuid}`;
export const BootIdPath = '/host/boot-id';

export interface DomainRecord {
  name: string;
  uuid: string;
  /** The saved definition. */
  definition: DomainDefinition;
  /** The definition the running guest was started with (plus hot-plugged changes); absent when it is not running. */
  live?: DomainDefinition;
  status: DomainStatus;
  autostart: boolean;
  tainted: string[];
}

function parseJson<T>(text: string | undefined, fallback: T): T {
  if (text === undefined) return fallback;
  try {
    return JSON.parse(text) as T;
  } catch {
    return fallback;
  }
}

/** Reads a domain's record; undefined when it is not defined. */
/** A domain's values as the store holds them (texts), before any parsing. */
export interface DomainTexts {
  uuid: string | undefined;
  definition: string | undefined;
  live: string | undefined;
  status: string | undefined;
  autostart: string | undefined;
  tainted: string | undefined;
}

/** Reads a domain's values as text, all at once. */
export async function readDomainTexts(r: StoreReader, name: string): Promise<DomainTexts> {
  const [uuid, definition, live, status, autostart, tainted] = await Promise.all([
    r.read(domainPath(name, 'uuid')),
    r.read(domainPath(name, 'definition')),
    r.read(domainPath(name, 'live')),
    r.read(domainPath(name, 'status')),
    r.read(domainPath(name, 'autostart')),
    r.read(domainPath(name, 'tainted')),
  ]);
  return { uuid, definition, live, status, autostart, tainted };
}

export async function readDomain(r: StoreReader, name: string): Promise<DomainRecord | undefined> {
  return domainFromTexts(name, await readDomainTexts(r, name));
}

/** The record of a domain's texts; undefined when it has no uuid or definition (no such domain). */
export function domainFromTexts(name: string, texts: DomainTexts): DomainRecord | undefined {
  const { uuid, definition, live, status, autostart, tainted } = texts;
  if (uuid === undefined || definition === undefined) return undefined;
  return {
    name,
    uuid,
    definition: JSON.parse(definition) as DomainDefinition,
    ...(live !== undefined ? { live: JSON.parse(live) as DomainDefinition } : {}),
    status: parseJson<DomainStatus>(status, { state: 'shutoff' }),
    autostart: autostart === 'true',
    tainted: parseJson<string[]>(tainted, []),
  };
}

export async function requireDomain(r: StoreReader, name: string): Promise<DomainRecord> {
  const rec = await readDomain(r, name);
  if (!rec) throw domainNotFound(name);
  return rec;
}

export function domainNotFound(name: string): VirtkitError {
  return new VirtkitError('domain.not-found', `no domain named "${name}"`, { name });
}

export async function listDomainNames(r: StoreReader): Promise<string[]> {
  return (await r.list('/domain')) ?? [];
}

export async function writeStatus(w: StoreWriter, name: string, status: DomainStatus): Promise<void> {
  await w.write(domainPath(name, 'status'), JSON.stringify(status));
}

/** Records the definition a guest runs with; in the transaction that records it running. */
export async function writeLive(w: StoreWriter, name: string, def: DomainDefinition): Promise<void> {
  await w.write(domainPath(name, 'live'), JSON.stringify(def));
}

/** Drops the live definition; in the transaction that records the guest stopped. */
export async function removeLive(w: StoreWriter, name: string): Promise<void> {
  await w.rm(domainPath(name, 'live'));
}

/**
 * Whether the saved definition is no longer the one the guest runs with (key order aside). What
 * the start resolved is not a difference: `vhost: auto` (or absent) running as on or off, and a
 * NIC on a `user`-mode virtkit network running as a user NIC.
 */
export function definitionDiffers(rec: Pick<DomainRecord, 'definition' | 'live'>): boolean {
  return rec.live !== undefined && !isDeepStrictEqual(withoutResolved(rec.live, rec.definition), rec.definition);
}

/** The live definition with the values the start resolved put back as the saved one has them. */
function withoutResolved(live: DomainDefinition, saved: DomainDefinition): DomainDefinition {
  const savedNics = new Map(saved.nics.map((n) => [n.id, n]));
  return {
    ...live,
    nics: live.nics.map((nic) => {
      const was = savedNics.get(nic.id);
      if (!was || was.mac !== nic.mac) return nic;
      const out = { ...nic };
      if (was.vhost === undefined || was.vhost === 'auto') {
        if (was.vhost === undefined) delete out.vhost;
        else out.vhost = was.vhost;
      }
      if (nic.network === 'user' && was.network !== 'user') out.network = was.network;
      return out;
    }),
  };
}

export async function writeNewDomain(w: StoreWriter, def: DomainDefinition): Promise<void> {
  await w.write(domainPath(def.name, 'uuid'), def.uuid);
  await w.write(domainPath(def.name, 'definition'), JSON.stringify(def));
  await writeStatus(w, def.name, { state: 'shutoff' });
  await w.write(domainPath(def.name, 'autostart'), 'false');
  await w.write(domainPath(def.name, 'tainted'), '[]');
  await w.write(uuidPath(def.uuid), def.name);
}
