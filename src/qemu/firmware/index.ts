/** qemu/firmware: firmware descriptors and the UEFI images of a domain. */
export { FirmwareDescriptorDir, parseFirmwareDescriptor, readFirmwareDescriptors, type FirmwareImage } from './descriptors.js';
export { OvmfDefaults, VarsFileName, plainUefi, prepareUefi } from './uefi.js';
