/**
 * QEMU firmware descriptors (docs/interop/firmware.json in QEMU; Debian's ovmf and seabios
 * install them under /usr/share/qemu/firmware): which image boots which interface (bios,
 * uefi), with which features (secure-boot, enrolled-keys, requires-smm...), on which machines.
 * The parser takes any JSON and keeps what it understands: a descriptor of another shape is
 * skipped, never thrown (fuzzed in descriptors.test.ts).
 */
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';

export const FirmwareDescriptorDir = '/usr/share/qemu/firmware';

export interface FirmwareImage {
  /** The descriptor's file name (its number orders preference, lowest first). */
  name: string;
  description: string;
  interfaces: string[];
  /** flash (pflash drives: code + a variable store template) or memory (-bios / -kernel loaded). */
  device: string;
  executable?: string;
  nvramTemplate?: string;
  features: string[];
  targets: { architecture: string; machines: string[] }[];
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string' && v.length <= 4096).slice(0, 64) : [];
}

function record(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? value as Record<string, unknown> : undefined;
}

function fileName(value: unknown): string | undefined {
  const name = record(value)?.['filename'];
  return typeof name === 'string' && name.startsWith('/') && !/[\n\r\0]/.test(name) ? name : undefined;
}

/** One descriptor from its text; undefined when it is not one. */
export function parseFirmwareDescriptor(name: string, text: string): FirmwareImage | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return undefined;
  }
  const d = record(doc);
  const mapping = record(d?.['mapping']);
  if (d === undefined || mapping === undefined || typeof mapping['device'] !== 'string') return undefined;
  const interfaces = strings(d['interface-types']);
  if (interfaces.length === 0) return undefined;
  const executable = fileName(mapping['executable']) ?? (typeof mapping['filename'] === 'string' ? fileName(mapping) : undefined);
  const nvramTemplate = fileName(mapping['nvram-template']);
  const targets = (Array.isArray(d['targets']) ? d['targets'] : []).slice(0, 64).flatMap((t: unknown) => {
    const r = record(t);
    return r && typeof r['architecture'] === 'string' ? [{ architecture: r['architecture'], machines: strings(r['machines']) }] : [];
  });
  return {
    name,
    description: typeof d['description'] === 'string' ? d['description'].slice(0, 1024) : '',
    interfaces,
    device: mapping['device'],
    ...(executable !== undefined ? { executable } : {}),
    ...(nvramTemplate !== undefined ? { nvramTemplate } : {}),
    features: strings(d['features']),
    targets,
  };
}

/** Every descriptor of `dir`, in file-name order (QEMU's preference order). */
export async function readFirmwareDescriptors(dir = FirmwareDescriptorDir): Promise<FirmwareImage[]> {
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.json')).sort();
  const out: FirmwareImage[] = [];
  for (const name of names) {
    const text = await readFile(join(dir, name), 'utf8').catch(() => undefined);
    const image = text === undefined || text.length > 1024 * 1024 ? undefined : parseFirmwareDescriptor(name, text);
    if (image) out.push(image);
  }
  return out;
}
