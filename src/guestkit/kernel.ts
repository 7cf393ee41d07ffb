/**
 * Finds the host kernel to boot: the newest /boot/vmlinuz-<version> whose modules are
 * installed under /lib/modules/<version> (a kernel without its modules cannot load virtio).
 */
import { constants } from 'node:fs';
import { access, readdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { VirtkitError, errorMessage } from '../util/errors.js';

export interface HostKernel {
  version: string;
  /** The compressed kernel image (bzImage) QEMU boots with -kernel. */
  imagePath: string;
  /** /lib/modules/<version> */
  modulesDir: string;
}

export interface FindKernelOptions {
  bootDir?: string;
  modulesRoot?: string;
  /** A specific image, `vmlinuz-<version>`; its version picks the modules directory. */
  image?: string;
}

/** Orders kernel versions the way a person reads them: 6.1.0-10 before 6.1.0-9 is wrong. */
export function compareVersions(a: string, b: string): number {
  const split = (v: string): Array<number | string> => v.split(/(\d+)/).filter((p) => p !== '').map((p) => (/^\d+$/.test(p) ? Number(p) : p));
  const pa = split(a);
  const pb = split(b);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i];
    const y = pb[i];
    if (x === y) continue;
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    if (typeof x === 'number' && typeof y === 'number') return x - y;
    return String(x) < String(y) ? -1 : 1;
  }
  return 0;
}

async function readable(path: string): Promise<boolean> {
  try {
    await access(path, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

async function kernelFor(imagePath: string, modulesRoot: string): Promise<HostKernel | undefined> {
  const version = basename(imagePath).replace(/^vmlinuz-/, '');
  const modulesDir = join(modulesRoot, version);
  if (!(await readable(imagePath)) || !(await readable(join(modulesDir, 'modules.dep')))) return undefined;
  return { version, imagePath, modulesDir };
}

export async function findHostKernel(options: FindKernelOptions = {}): Promise<HostKernel> {
  const bootDir = options.bootDir ?? '/boot';
  const modulesRoot = options.modulesRoot ?? '/lib/modules';
  const hint = 'install linux-image-amd64; the image must be readable by this user';
  if (options.image !== undefined) {
    const found = await kernelFor(options.image, modulesRoot);
    if (found === undefined) {
      throw new VirtkitError('guestkit.missing-host-file', `kernel ${options.image} is not readable or has no modules under ${modulesRoot} (${hint})`, { path: options.image });
    }
    return found;
  }
  let names: string[];
  try {
    names = await readdir(bootDir);
  } catch (err) {
    throw new VirtkitError('guestkit.missing-host-file', `cannot list ${bootDir}: ${errorMessage(err)} (${hint})`, { path: bootDir });
  }
  const versions = names.filter((n) => n.startsWith('vmlinuz-')).sort((a, b) => compareVersions(b, a));
  for (const name of versions) {
    const found = await kernelFor(join(bootDir, name), modulesRoot);
    if (found !== undefined) return found;
  }
  throw new VirtkitError('guestkit.missing-host-file', `no readable ${bootDir}/vmlinuz-* with modules under ${modulesRoot} (${hint})`, { path: bootDir });
}
