/**
 * Domain capabilities (`virtkit domcapabilities`, libvirt's `virsh domcapabilities`): what a
 * definition can ask of this host's QEMU. Machine types, CPU models and device models come from
 * the capability probe (query-machines, query-cpu-definitions, qom-list-types: probed once and
 * cached, caps.ts); firmware from the descriptors QEMU's packages install
 * (/usr/share/qemu/firmware/*.json). Device models are grouped by what they are for, each group
 * the models of a known list that this QEMU offers.
 */
import { FilesystemDrivers, FirmwareKinds, VideoModels } from '../../conf/index.js';
import type { QemuCapabilities } from '../caps.js';
import { plainUefi, type FirmwareImage } from '../firmware/index.js';

export interface DomainCapabilities {
  binary: string;
  version: string;
  accelerators: string[];
  kvm: { usable: boolean; reason: string };
  machines: { name: string; alias?: string; isDefault: boolean; maxCpus: number; deprecated: boolean }[];
  cpuModels: string[];
  firmware: {
    /** The `firmware` values a definition may use here (uefi only with OVMF installed). */
    kinds: string[];
    images: { name: string; description: string; interfaces: string[]; device: string; executable?: string; nvramTemplate?: string; features: string[]; machines: string[] }[];
  };
  /** Device models this QEMU offers, by purpose. */
  devices: Record<DeviceGroup, string[]>;
  /** What the definition schema accepts for these (values the host cannot serve are left out). */
  definition: { video: string[]; filesystemDrivers: string[] };
}

export type DeviceGroup = 'disk' | 'nic' | 'video' | 'balloon' | 'filesystem' | 'controller';

/** Known models per purpose (x86 machines); a group lists those the binary has. */
export const DeviceModels: Readonly<Record<DeviceGroup, readonly string[]>> = {
  disk: ['virtio-blk-pci', 'virtio-blk-device', 'scsi-hd', 'scsi-cd', 'ide-hd', 'ide-cd', 'nvme', 'usb-storage', 'floppy'],
  nic: ['virtio-net-pci', 'virtio-net-device', 'e1000', 'e1000e', 'rtl8139', 'vmxnet3', 'ne2k_pci', 'pcnet', 'i82559er', 'usb-net'],
  video: ['VGA', 'bochs-display', 'virtio-vga', 'virtio-gpu-pci', 'cirrus-vga', 'qxl-vga', 'ramfb', 'vmware-svga', 'secondary-vga'],
  balloon: ['virtio-balloon-pci', 'virtio-balloon-device'],
  filesystem: ['vhost-user-fs-pci', 'virtio-9p-pci'],
  controller: ['virtio-scsi-pci', 'lsi53c895a', 'megasas', 'ich9-ahci', 'piix3-ide', 'nec-usb-xhci', 'qemu-xhci', 'pcie-root-port'],
};

export function domainCapabilitiesOf(caps: Omit<QemuCapabilities, 'kvm'> & { kvm: { usable: boolean; reason: string } }, images: readonly FirmwareImage[],
  host: { ovmf: boolean; virtiofsd: boolean }): DomainCapabilities {
  const offered = new Set(caps.devices);
  const devices = Object.fromEntries(Object.entries(DeviceModels).map(([group, models]) => [group, models.filter((m) => offered.has(m))])) as Record<DeviceGroup, string[]>;
  const videoDriver: Record<string, string> = { vga: 'VGA', bochs: 'bochs-display', virtio: 'virtio-vga' };
  const { major, minor, micro } = caps.version;
  return {
    binary: caps.binary,
    version: `${major}.${minor}.${micro}`,
    accelerators: [...caps.accelerators],
    kvm: { usable: caps.kvm.usable, reason: caps.kvm.reason },
    machines: caps.machines.map((m) => ({ name: m.name, ...(m.alias ? { alias: m.alias } : {}), isDefault: m.isDefault, maxCpus: m.cpuMax, deprecated: m.deprecated })),
    cpuModels: [...caps.cpuModels],
    firmware: {
      kinds: FirmwareKinds.filter((k) => k === 'bios' || host.ovmf || plainUefi(images) !== undefined),
      images: images.map((i) => ({
        name: i.name, description: i.description, interfaces: i.interfaces, device: i.device,
        ...(i.executable ? { executable: i.executable } : {}), ...(i.nvramTemplate ? { nvramTemplate: i.nvramTemplate } : {}),
        features: i.features, machines: i.targets.flatMap((t) => t.machines.map((m) => `${t.architecture}:${m}`)),
      })),
    },
    devices,
    definition: {
      video: VideoModels.filter((v) => v === 'none' || offered.has(videoDriver[v] ?? '')),
      filesystemDrivers: FilesystemDrivers.filter((d) => d === 'auto' || (d === '9p' ? offered.has('virtio-9p-pci') : offered.has('vhost-user-fs-pci') && host.virtiofsd)),
    },
  };
}
