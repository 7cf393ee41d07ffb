/**
 * Booting from the guest's own disk (pygrub's job): bootloader configuration parsers
 * (GRUB 2, BLS, extlinux/syslinux), the entries of a disk, and the extraction of the chosen
 * kernel and initrd before QEMU starts.
 */
export { buildBlsMenu, compareBlsEntries, parseBlsEntry, parseLoaderConf, type BlsEntry, type LoaderConf } from './bls.js';
export { parseExtlinuxConfig } from './extlinux.js';
export { bootInfoOf, candidatePaths, findBootEntries, type BootEntry, type BootInfo, type FileLocation, type MenuSummary } from './find.js';
export { parseGrubConfig } from './grub.js';
export {
  DEFAULT_MAX_BOOT_BYTES, bootFilePaths, planGuestBoot, prepareGuestBoot, removeBootFiles,
  type BootFiles, type BootPlan, type GuestFile, type PrepareOptions,
} from './prepare.js';
export { selectEntry } from './select.js';
export { BootLoaderKinds, MAX_CONFIG_BYTES, type BootLoaderKind, type BootMenu, type MenuEntry } from './types.js';
export { compareVersions } from './version-compare.js';
