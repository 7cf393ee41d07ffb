/**
 * Filesystem detection by signature. Each reader registers a probe (cheap: reads a few
 * bytes) and an opener; `openFilesystem` tries them in registration order. ISO 9660 and FAT
 * readers add themselves to `builtinFilesystems` in index.ts.
 */
import type { BlockDevice } from '../../storage/block/index.js';
import { VirtkitError } from '../../util/errors.js';
import type { Filesystem, ReadPolicy } from './types.js';

export interface FilesystemType {
  /** The name `info.type` reports for the family (`ext`, `iso9660`, `fat`). */
  readonly name: string;
  /** True when `dev` carries this filesystem's signature. Must not throw on garbage. */
  probe(dev: BlockDevice): Promise<boolean>;
  /** `policy`: how damage is treated (readers without damage tolerance may ignore it). */
  open(dev: BlockDevice, policy?: ReadPolicy): Promise<Filesystem>;
}

const registry: FilesystemType[] = [];

export function registerFilesystem(type: FilesystemType): void {
  if (!registry.some((t) => t.name === type.name)) registry.push(type);
}

export function registeredFilesystems(): readonly FilesystemType[] {
  return registry;
}

/** The registered type whose signature `dev` carries, or undefined. */
export async function detectFilesystem(dev: BlockDevice): Promise<FilesystemType | undefined> {
  for (const t of registry) {
    if (await t.probe(dev)) return t;
  }
  return undefined;
}

/** Opens the filesystem on `dev`. Throws `fs.unsupported` when no reader recognizes it. */
export async function openFilesystem(dev: BlockDevice, policy?: ReadPolicy): Promise<Filesystem> {
  const type = await detectFilesystem(dev);
  if (type === undefined) {
    const known = registry.map((t) => t.name).join(', ');
    throw new VirtkitError('fs.unsupported', `no known filesystem signature found (readers: ${known})`, { size: dev.size });
  }
  return type.open(dev, policy);
}
