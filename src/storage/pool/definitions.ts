/**
 * Pool definitions as the manager's store keeps them:
 *
 *   /pool/<name>/definition   {"name":"default","type":"dir","path":"/var/lib/virtkit/images"}
 *
 * Only the definition lives in the store; the volumes are whatever image files the pool
 * directory holds (their format declared by their names), so there is no second copy of the
 * directory's contents to drift from it.
 */
import { isAbsolute, normalize } from 'node:path';
import type { StoreReader, StoreWriter } from '../../store/index.js';
import { VirtkitError } from '../../util/errors.js';
import { checkPoolName } from './names.js';

export const PoolTypes = ['dir'] as const;
export type PoolType = (typeof PoolTypes)[number];

export interface PoolDefinition {
  readonly name: string;
  readonly type: PoolType;
  /** Absolute path of the pool directory. */
  readonly path: string;
}

export const PoolRoot = '/pool';
export const poolPath = (name: string, leaf?: string): string => (leaf ? `${PoolRoot}/${name}/${leaf}` : `${PoolRoot}/${name}`);

/**
 * Checks and normalizes a definition.
 * @throws VirtkitError('pool.invalid') for a bad name, type or path.
 */
export function checkPoolDefinition(input: { name: string; type: string; path: string }): PoolDefinition {
  checkPoolName(input.name);
  if (!(PoolTypes as readonly string[]).includes(input.type)) {
    throw new VirtkitError('pool.invalid', `pool type must be one of ${PoolTypes.join(', ')}, got "${input.type}"`, { field: 'type', type: input.type });
  }
  if (!isAbsolute(input.path) || input.path.includes('\0') || input.path.length > 4096) {
    throw new VirtkitError('pool.invalid', `pool path must be an absolute directory path, got "${input.path.slice(0, 200)}"`, { field: 'path' });
  }
  const path = normalize(input.path);
  return { name: input.name, type: 'dir', path: path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path };
}

export async function readPoolDefinition(r: StoreReader, name: string): Promise<PoolDefinition | undefined> {
  checkPoolName(name);
  const text = await r.read(poolPath(name, 'definition'));
  return text === undefined ? undefined : (JSON.parse(text) as PoolDefinition);
}

/** @throws VirtkitError('pool.not-found') */
export async function requirePoolDefinition(r: StoreReader, name: string): Promise<PoolDefinition> {
  const def = await readPoolDefinition(r, name);
  if (!def) throw new VirtkitError('pool.not-found', `no pool named "${name}"`, { pool: name });
  return def;
}

export async function listPoolNames(r: StoreReader): Promise<string[]> {
  return (await r.list(PoolRoot)) ?? [];
}

export async function writePoolDefinition(w: StoreWriter, def: PoolDefinition): Promise<void> {
  await w.write(poolPath(def.name, 'definition'), JSON.stringify(def));
}

export async function removePoolDefinition(w: StoreWriter, name: string): Promise<boolean> {
  return w.rm(poolPath(name));
}
