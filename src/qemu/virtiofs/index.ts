/** qemu/virtiofs: the virtiofsd helper processes of virtio-fs shared folders. */
export {
  DefaultVirtiofsdPath, fuseOptionValue, provenVirtiofsd, provenVirtiofsdRunDir, startVirtiofsd, stopVirtiofsds, virtiofsdArgs, virtiofsdInstalled, virtiofsdPath,
  virtiofsdPidfile,
} from './virtiofsd.js';
