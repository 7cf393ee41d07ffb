import { describe, expect, test } from 'vitest';
import { parseNetworkDefinition } from '../../net/definition.js';
import { VirtkitError } from '../../util/errors.js';
import { importLibvirtNetworkXml } from './network.js';

/** libvirt's own default network, as `virsh net-dumpxml default` prints it. */
const Default = `<network connections='1'>
  <name>default</name>
  <uuid>7a1b8c33-5e32-4e9b-9d8f-111111111111</uuid>
  <forward mode='nat'>
  </forward>
  <bridge name='virbr0' stp='on' delay='0'/>
  <mac address='52:54:00:0a:0b:0c'/>
  <ip address='192.168.122.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='192.168.122.2' end='192.168.122.254'/>
    </dhcp>
  </ip>
</network>
`;

function failure(text: string): VirtkitError {
  try {
    importLibvirtNetworkXml(text);
  } catch (err) {
    if (err instanceof VirtkitError) return err;
    throw err;
  }
  throw new Error('imported');
}

describe('libvirt network XML', () => {
  test("libvirt's default network is a nat network virtkit's checks accept", () => {
    const input = importLibvirtNetworkXml(Default);
    expect(input).toEqual({ name: 'default', mode: 'nat', bridge: 'virbr0', subnet: '192.168.122.0/24', dhcp: { start: '192.168.122.2', end: '192.168.122.254' } });
    expect(parseNetworkDefinition(input)).toMatchObject({ name: 'default', mode: 'nat', subnet: '192.168.122.0/24', address: '192.168.122.1' });
  });

  test('no <forward> is isolated; a prefix works as a netmask; a domain is kept', () => {
    const input = importLibvirtNetworkXml("<network><name>lab</name><domain name='lab.test'/><ip address='10.9.0.1' prefix='16'/></network>");
    expect(parseNetworkDefinition(input)).toMatchObject({ name: 'lab', mode: 'isolated', subnet: '10.9.0.0/16', domain: 'lab.test' });
  });

  test('forward mode bridge names the host bridge', () => {
    const input = importLibvirtNetworkXml("<network><name>host</name><forward mode='bridge'/><bridge name='br0'/></network>");
    expect(parseNetworkDefinition(input)).toEqual({ name: 'host', mode: 'bridge', bridge: 'br0' });
  });

  test('what virtkit networks cannot be is refused by XPath', () => {
    const routed = failure("<network><name>r</name><forward mode='route'/><ip address='10.0.0.1' netmask='255.255.255.0'/><dns><host ip='10.0.0.5'/></dns></network>");
    expect(routed.code).toBe('definition.unsupported');
    expect(routed.message).toContain('/network/forward/@mode: "route" is not supported');
    expect(routed.message).toContain('/network/dns: not supported');
    const offset = failure("<network><name>o</name><ip address='10.0.0.7' netmask='255.255.255.0'/></network>");
    expect(offset.message).toContain("virtkit's bridge takes the subnet's first address (10.0.0.1)");
    expect(failure("<network><name>m</name><ip address='10.0.0.1' netmask='255.0.255.0'/></network>").code).toBe('network.invalid');
    expect(failure('<domain><name>d</name></domain>').message).toContain('must be <network>');
    expect(failure('<network><name>x&#x1b;</name></network>').code).toBe('definition.invalid');
  });

  test('fuzz: mutated documents import or fail with typed errors only', () => {
    let seed = 7;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    const pieces = ['<', '>', '/', "'", '"', '&', '&#x1b;', 'ip', 'network', '=', ' ', '255.', '-1', '\u0000', 'dhcp', 'range'];
    for (let i = 0; i < 3000; i += 1) {
      const chars = [...Default];
      for (let k = 1 + random(4); k > 0; k -= 1) {
        const at = random(chars.length);
        if (random(2) === 0) chars.splice(at, 1 + random(3));
        else chars.splice(at, 0, pieces[random(pieces.length)] ?? '');
      }
      try {
        parseNetworkDefinition(importLibvirtNetworkXml(chars.join('')));
      } catch (err) {
        if (!(err instanceof VirtkitError)) throw err;
        expect(err.code).toMatch(/^(definition\.(invalid|xml-refused|unsupported)|network\.invalid)$/);
      }
    }
  });
});
