/**
 * NIC props, shared by the command line (-netdev/-device JSON) and QMP hot-plug
 * (netdev_add/device_add). QEMU 7.2 takes -netdev as JSON with hostfwd as a list of
 * {"str": rule}. Names come from the NIC's stable id: device `net0`, netdev `net0-netdev`
 * (netdev ids and device ids are separate namespaces in QEMU; the suffix keeps `info network`,
 * which lists both, unambiguous).
 */
import type { NicDefinition, NicModel } from '../../conf/index.js';
import type { JsonProps } from './escape.js';
import { VirtkitError } from '../../util/errors.js';
import { tapName } from '../../util/tap-name.js';

export const NicDrivers: Readonly<Record<NicModel, string>> = {
  virtio: 'virtio-net-pci',
  e1000: 'e1000',
  rtl8139: 'rtl8139',
};

export function netdevId(nic: Pick<NicDefinition, 'id'>): string {
  return `${nic.id}-netdev`;
}

export function nicDeviceId(nic: Pick<NicDefinition, 'id'>): string {
  return nic.id;
}

/**
 * A NIC on a virtkit network (anything but `user`) is a tap the manager made before QEMU
 * starts, named from the domain and the NIC id (util/tap-name.ts); QEMU opens it by name and
 * runs no scripts. `vhost` is what the manager resolved (`auto` became on or off at start).
 */
export function netdevProps(nic: Pick<NicDefinition, 'id' | 'network' | 'hostfwd' | 'vhost'>, domain?: string): JsonProps {
  if (nic.network !== 'user') {
    if (domain === undefined) throw new VirtkitError('operation.unsupported', `NIC "${nic.id}": network "${nic.network}" needs a tap made by the manager, which hot-plug does not make yet; attach it to the user network or define it and restart`, { nic: nic.id });
    return { type: 'tap', id: netdevId(nic), ifname: tapName(domain, nic.id), script: 'no', downscript: 'no', vhost: nic.vhost === 'on' };
  }
  const props: JsonProps = { type: nic.network, id: netdevId(nic) };
  if (nic.hostfwd.length > 0) props['hostfwd'] = nic.hostfwd.map((rule) => ({ str: rule }));
  return props;
}

export function nicDeviceProps(nic: Pick<NicDefinition, 'id' | 'model' | 'mac'>): JsonProps {
  return { driver: NicDrivers[nic.model], id: nicDeviceId(nic), netdev: netdevId(nic), mac: nic.mac };
}
