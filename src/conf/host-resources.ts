/**
 * The definition rules of screens, firmware, shared folders and resource limits: the parts of
 * normalizing that are theirs (sizes, host paths) and the checks that involve more than one
 * field. validate.ts calls both; the schema fields are in schema.ts.
 */
import { isAbsolute, resolve } from 'node:path';
import { definitionError } from './errors.js';
import type { DomainDefinition, VideoModel } from './schema.js';
import { parseSize } from './size.js';

type Draft = Record<string, unknown>;

/** The least memory OVMF starts in. */
export const UefiMinMemoryBytes = 256 * 1024 * 1024;

/** Draft (schema checked, defaults applied) -> sizes in bytes, shared folder sources absolute. */
export function normalizeHostResources(draft: Draft, baseDir: string | undefined): void {
  const limit = draft['memory_limit'];
  if (typeof limit === 'string' || typeof limit === 'number') draft['memory_limit'] = parseSize(limit);
  const filesystems = draft['filesystems'];
  if (!Array.isArray(filesystems)) return;
  for (const fs of filesystems as Draft[]) {
    const source = fs['source'];
    if (typeof source === 'string' && baseDir !== undefined && !isAbsolute(source)) fs['source'] = resolve(baseDir, source);
  }
}

/** The video card a definition gets: its `video`, else vga under `graphics: vnc`, else none. */
export function videoModelOf(def: Pick<DomainDefinition, 'video' | 'graphics'>): VideoModel {
  return def.video ?? (def.graphics === 'vnc' ? 'vga' : 'none');
}

export function checkHostResourceRules(def: DomainDefinition): void {
  if (def.graphics === 'vnc' && def.video === 'none') {
    throw definitionError(['video'], 'graphics-needs-video', 'cannot be none with graphics: vnc (a VNC screen shows a video card)', def.video);
  }
  if (def.vnc_password === true && def.graphics !== 'vnc') {
    throw definitionError(['vnc_password'], 'needs-vnc', 'needs graphics: vnc', def.vnc_password);
  }
  if (def.firmware === 'uefi' && def.memory < UefiMinMemoryBytes) {
    // OVMF faults (#GP) while it starts in less under QEMU 7.2, before any guest code runs
    throw definitionError(['memory'], 'uefi-memory', 'must be at least 256MiB with firmware: uefi (OVMF needs it)', def.memory);
  }
  const tags = new Map<string, number>();
  (def.filesystems ?? []).forEach((fs, i) => {
    const previous = tags.get(fs.target);
    if (previous !== undefined) throw definitionError(['filesystems', i, 'target'], 'unique', `must differ from filesystems[${previous}].target`, fs.target);
    tags.set(fs.target, i);
  });
}
