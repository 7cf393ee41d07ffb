/**
 * The UEFI images of a guest: OVMF's code, shared read-only, and a variable store of the
 * domain's own, copied from OVMF's empty template the first time the domain starts under
 * UEFI and kept in its state directory (the manager removes it on undefine), so boot entries a
 * guest writes survive its restarts.
 */
import { access, chmod, copyFile, mkdir } from 'node:fs/promises';
import { constants as fsConstants } from 'node:fs';
import { join } from 'node:path';
import { VirtkitError } from '../../util/errors.js';
import type { FirmwareFiles } from '../command/index.js';
import { readFirmwareDescriptors, type FirmwareImage } from './descriptors.js';

/** Debian's ovmf package, when no descriptor says otherwise. */
export const OvmfDefaults = { code: '/usr/share/OVMF/OVMF_CODE_4M.fd', varsTemplate: '/usr/share/OVMF/OVMF_VARS_4M.fd' } as const;
/** The domain's variable store, in its state directory. */
export const VarsFileName = 'OVMF_VARS.fd';

/** A plain UEFI flash image for x86_64: no secure boot, no SMM requirement (what a guest kit guest boots). */
export function plainUefi(images: readonly FirmwareImage[]): FirmwareImage | undefined {
  return images.find((i) => i.interfaces.includes('uefi') && i.device === 'flash' && i.executable !== undefined && i.nvramTemplate !== undefined
    && i.targets.some((t) => t.architecture === 'x86_64')
    && !i.features.some((f) => f === 'secure-boot' || f === 'requires-smm' || f === 'enrolled-keys'));
}

const exists = (path: string): Promise<boolean> => access(path, fsConstants.R_OK).then(() => true, () => false);

/**
 * The images for a domain whose state directory is `stateDir`, its variable store created
 * there when missing. 'operation.unsupported' when OVMF is not installed.
 */
export async function prepareUefi(stateDir: string, descriptorDir?: string): Promise<FirmwareFiles> {
  const found = plainUefi(await readFirmwareDescriptors(descriptorDir));
  const code = found?.executable ?? OvmfDefaults.code;
  const template = found?.nvramTemplate ?? OvmfDefaults.varsTemplate;
  for (const path of [code, template]) {
    if (!(await exists(path))) {
      throw new VirtkitError('operation.unsupported', `firmware: uefi needs OVMF (Debian package ovmf): ${path} not found`, { field: 'firmware', path });
    }
  }
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const vars = join(stateDir, VarsFileName);
  const created = await copyFile(template, vars, fsConstants.COPYFILE_EXCL).then(() => true, (err: unknown) => {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return false;
  });
  // the guest's own boot entries and secrets: readable by us only (copyFile keeps the template's 0644)
  if (created) await chmod(vars, 0o600);
  return { code, vars };
}
