/**
 * The command-line parts of screens, firmware and shared folders (docs/screens.md,
 * docs/firmware.md, docs/shared-folders.md). Pure, like the rest of the builder: host paths
 * (the OVMF images, the domain's variable store) and the shared-folder drivers chosen for this
 * host come in the context.
 *
 * Names: every object here has a "." in its id or node name, which disk and NIC ids cannot
 * contain, so no device of the definition can collide with them.
 */
import { join } from 'node:path';
import { BuiltinDeviceIds, videoModelOf, type DomainDefinition, type FilesystemDefinition, type VideoModel } from '../../conf/index.js';
import { VirtkitError } from '../../util/errors.js';
import { assertPlainValue, jsonOption, keyValueOption, type JsonProps } from './escape.js';

/** A shared folder's driver once `auto` is resolved (by the driver: virtiofsd installed or not). */
export type ResolvedFsDriver = 'virtiofs' | '9p';

/** The UEFI images of one domain: OVMF's code (read-only, shared) and its own variable store. */
export interface FirmwareFiles {
  code: string;
  vars: string;
}

export const VideoDrivers: Readonly<Record<Exclude<VideoModel, 'none'>, string>> = {
  vga: 'VGA',
  bochs: 'bochs-display',
  virtio: 'virtio-vga',
};

/** The shared memory backend virtio-fs needs (vhost-user reads guest RAM). */
export const SharedMemoryId = 'vk.ram';
export const FirmwareNodes = { code: 'fw.code', vars: 'fw.vars' } as const;

export function filesystemDeviceId(index: number): string {
  return `fs.${index}`;
}

/** virtiofsd's vhost-user socket for filesystems[index], in the run dir. */
export function virtiofsSocketPath(runDir: string, index: number): string {
  return join(runDir, `virtiofsd.${index}.sock`);
}

/** The drivers of a definition's shared folders, `auto` resolved the way the host allows. */
export function resolveFsDrivers(def: Pick<DomainDefinition, 'filesystems'>, virtiofsdInstalled: boolean): ResolvedFsDriver[] {
  return (def.filesystems ?? []).map((fs) => {
    if (fs.driver !== 'auto') return fs.driver;
    // QEMU 7.2's virtiofsd cannot export read-only: a read-only share is 9p's (readonly=on, enforced by QEMU).
    return virtiofsdInstalled && !fs.readonly ? 'virtiofs' : '9p';
  });
}

function resolvedDrivers(def: DomainDefinition, drivers: readonly ResolvedFsDriver[] | undefined): ResolvedFsDriver[] {
  const list = def.filesystems ?? [];
  if (list.length === 0) return [];
  if (drivers === undefined || drivers.length !== list.length) {
    throw new VirtkitError('argument.invalid', 'filesystems: the driver of each shared folder must be resolved first (context filesystemDrivers missing)');
  }
  return [...drivers];
}

/** Whether guest RAM must be a shared memory backend (any virtio-fs share). */
export function needsSharedMemory(def: DomainDefinition, drivers: readonly ResolvedFsDriver[] | undefined): boolean {
  return resolvedDrivers(def, drivers).includes('virtiofs');
}

/** Suffixes of the -machine option: the shared RAM backend, the UEFI flash nodes. */
export function machineExtras(def: DomainDefinition, drivers: readonly ResolvedFsDriver[] | undefined): string {
  let out = '';
  if (needsSharedMemory(def, drivers)) out += `,memory-backend=${SharedMemoryId}`;
  if (def.firmware === 'uefi') out += `,pflash0=${FirmwareNodes.code},pflash1=${FirmwareNodes.vars}`;
  return out;
}

/** `-object memory-backend-memfd` for virtio-fs: RAM QEMU and virtiofsd both map. */
export function memoryBackendArgs(def: DomainDefinition, drivers: readonly ResolvedFsDriver[] | undefined): string[] {
  if (!needsSharedMemory(def, drivers)) return [];
  return ['-object', jsonOption({ 'qom-type': 'memory-backend-memfd', id: SharedMemoryId, size: def.memory, share: true })];
}

/** The two pflash drives of UEFI: OVMF's code read-only, the domain's variable store writable. */
export function firmwareArgs(def: DomainDefinition, files: FirmwareFiles | undefined): string[] {
  if (def.firmware !== 'uefi') return [];
  if (files === undefined) {
    throw new VirtkitError('argument.invalid', 'firmware uefi: the OVMF images must be located first (context firmware missing)');
  }
  const node = (name: string, path: string, readOnly: boolean): string[] => [
    '-blockdev', jsonOption({ driver: 'file', filename: assertPlainValue(path, `${name} path`), 'node-name': `${name}.file`, 'read-only': readOnly }),
    '-blockdev', jsonOption({ driver: 'raw', file: `${name}.file`, 'node-name': name, 'read-only': readOnly }),
  ];
  return [...node(FirmwareNodes.code, files.code, true), ...node(FirmwareNodes.vars, files.vars, false)];
}

/** The VNC server (a unix socket; `password=on` with vnc_password) and the video card. */
export function screenArgs(def: DomainDefinition, vncSocket: string): string[] {
  const args: string[] = [];
  if (def.graphics === 'vnc') {
    // The key is spelt out: as an implied first value, a path containing "=" would be read as a key.
    args.push('-vnc', keyValueOption([['vnc', `unix:${vncSocket}`]], 'VNC socket') + (def.vnc_password === true ? ',password=on' : ''));
  }
  const model = videoModelOf(def);
  if (model !== 'none') args.push('-device', jsonOption({ driver: VideoDrivers[model], id: BuiltinDeviceIds.video }));
  return args;
}

function virtiofsArgs(fs: FilesystemDefinition, index: number, runDir: string): string[] {
  const id = filesystemDeviceId(index);
  return [
    '-chardev', `socket,id=${id}-sock,${keyValueOption([['path', virtiofsSocketPath(runDir, index)]], 'virtiofsd socket')}`,
    '-device', jsonOption({ driver: 'vhost-user-fs-pci', id, chardev: `${id}-sock`, tag: fs.target } satisfies JsonProps),
  ];
}

function ninepArgs(fs: FilesystemDefinition, index: number): string[] {
  const id = filesystemDeviceId(index);
  // security_model=none: files are created as QEMU's user, ownership changes the host refuses are ignored.
  const fsdev = `local,id=${id}-dev,${keyValueOption([['path', fs.source]], `filesystems[${index}].source`)},security_model=none`
    + (fs.readonly ? ',readonly=on' : '');
  return ['-fsdev', fsdev, '-device', jsonOption({ driver: 'virtio-9p-pci', id, fsdev: `${id}-dev`, mount_tag: fs.target })];
}

/** One -chardev/-device pair (virtio-fs) or -fsdev/-device pair (9p) per shared folder. */
export function filesystemArgs(def: DomainDefinition, drivers: readonly ResolvedFsDriver[] | undefined, runDir: string): string[] {
  const resolved = resolvedDrivers(def, drivers);
  return (def.filesystems ?? []).flatMap((fs, i) => (resolved[i] === 'virtiofs' ? virtiofsArgs(fs, i, runDir) : ninepArgs(fs, i)));
}
