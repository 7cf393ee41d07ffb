/**
 * NIC props, shared by the command line (-netdev/-device JSON) and QMP hotplug
 * (netdev_add/device_add). QEMU 7.2 takes -netdev as JSON with hostfwd as a list of
 * {"str": rule}. Names: netdev `net0`, device `nic0`.
 */
import type { NicDefinition, NicModel } from '../../conf/index.js';
import type { JsonProps } from './escape.js';

export const NicDrivers: Readonly<Record<NicModel, string>> = {
  virtio: 'virtio-net-pci',
  e1000: 'e1000',
  rtl8139: 'rtl8139',
};

export function netdevId(index: number): string {
  return `net${index}`;
}

export function nicDeviceId(index: number): string {
  return `nic${index}`;
}

export function netdevProps(nic: NicDefinition, index: number): JsonProps {
  const props: JsonProps = { type: nic.network, id: netdevId(index) };
  if (nic.hostfwd.length > 0) props['hostfwd'] = nic.hostfwd.map((rule) => ({ str: rule }));
  return props;
}

export function nicDeviceProps(nic: NicDefinition, index: number): JsonProps {
  return { driver: NicDrivers[nic.model], id: nicDeviceId(index), netdev: netdevId(index), mac: nic.mac };
}
