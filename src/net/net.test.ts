/** Subnet math, tap naming, the nft and dnsmasq renderings, rates, leases, and a fuzz of the definition parser. */
import { describe, expect, it } from 'vitest';
import { isVirtkitError } from '../util/errors.js';
import { parseTapAlias, tapAlias, tapName } from '../util/tap-name.js';
import { parseRate } from './bandwidth.js';
import { parseNetworkDefinition } from './definition.js';
import { dnsmasqPaths, parseLeases, renderDnsmasqArgs } from './dnsmasq.js';
import { renderNftTable } from './nft.js';
import { contains, formatSubnet, lastOf, overlaps, parseIpv4, parseSubnet } from './subnet.js';

describe('subnets', () => {
  it('parses, contains and overlaps', () => {
    const a = parseSubnet('192.168.100.0/24');
    expect(formatSubnet(a)).toBe('192.168.100.0/24');
    expect(contains(a, parseIpv4('192.168.100.77')!)).toBe(true);
    expect(contains(a, parseIpv4('192.168.101.1')!)).toBe(false);
    expect(overlaps(a, parseSubnet('192.168.100.128/25'))).toBe(true);
    expect(overlaps(a, parseSubnet('192.168.0.0/16'))).toBe(true);
    expect(overlaps(a, parseSubnet('192.168.101.0/24'))).toBe(false);
    expect(overlaps(parseSubnet('0.0.0.0/0'), a)).toBe(true);
    expect(lastOf(a)).toBe(parseIpv4('192.168.100.255'));
    expect(parseIpv4('256.1.1.1')).toBeUndefined();
  });

  it('refuses host bits and bad prefixes with the subnet it meant', () => {
    expect(() => parseSubnet('192.168.100.1/24')).toThrow(/host bits set; the subnet is 192.168.100.0\/24/);
    expect(() => parseSubnet('10.0.0.0/33')).toThrow(/IPv4 subnet/);
  });
});

describe('taps', () => {
  it('names fit IFNAMSIZ, are stable, and differ per domain and NIC', () => {
    const n = tapName('a-very-long-domain-name-indeed', 'net0');
    expect(n).toMatch(/^vk[0-9a-f]{12}$/);
    expect(tapName('a-very-long-domain-name-indeed', 'net0')).toBe(n);
    expect(tapName('a-very-long-domain-name-indeed', 'net1')).not.toBe(n);
    expect(tapName('a', 'bnet0')).not.toBe(tapName('ab', 'net0'));
  });

  it('aliases name their owner and nothing else is read as ours', () => {
    expect(parseTapAlias(tapAlias('web:1', 'net0'))).toEqual({ domain: 'web:1', nicId: 'net0' });
    expect(parseTapAlias('virtkit:')).toBeUndefined();
    expect(parseTapAlias('libvirt:x:y')).toBeUndefined();
    expect(parseTapAlias(undefined)).toBeUndefined();
  });
});

describe('definitions', () => {
  it('normalizes a nat network: bridge, address, DHCP range', () => {
    expect(parseNetworkDefinition({ name: 'lab', mode: 'nat', subnet: '192.168.100.0/24', domain: 'lab.test' })).toEqual({
      name: 'lab', mode: 'nat', bridge: 'vkbr-lab', subnet: '192.168.100.0/24', address: '192.168.100.1',
      dhcp: { start: '192.168.100.2', end: '192.168.100.254' }, domain: 'lab.test',
    });
  });

  it('refuses an address outside the subnet, a bridge network without a bridge, unknown fields', () => {
    expect(() => parseNetworkDefinition({ name: 'x', mode: 'nat', subnet: '10.0.0.0/24', dhcp: { start: '10.0.1.2', end: '10.0.0.9' } }))
      .toThrow(/dhcp.start: 10.0.1.2 is outside/);
    expect(() => parseNetworkDefinition({ name: 'x', mode: 'nat', subnet: '10.0.0.0/24', dhcp: { start: '10.0.0.1', end: '10.0.0.9' } }))
      .toThrow(/bridge's/);
    expect(() => parseNetworkDefinition({ name: 'x', mode: 'bridge' })).toThrow(/bridge: a bridge network names an existing host bridge/);
    expect(() => parseNetworkDefinition({ name: 'x', mode: 'nat', subnet: '10.0.0.0/24', colour: 'red' })).toThrow(/colour: unknown field/);
    expect(() => parseNetworkDefinition({ name: 'user', mode: 'user' })).toThrow(/name:/);
  });

  it('fuzz: random and mutated inputs give a definition or network.invalid, never anything else', () => {
    let seed = 12345;
    const rnd = (n: number): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
    const atoms: unknown[] = ['lab', 'nat', 'isolated', 'bridge', 'user', '10.1.0.0/16', '10.1.2.3', '10.1.0.0/33', '', 'br0',
      '999.1.1.1', 'a'.repeat(300), 0, -1, 1e308, null, true, [], {}, { start: '10.1.0.5', end: '10.1.0.9' }, '\u0000', 'x.y', '/24'];
    const keys = ['name', 'mode', 'bridge', 'subnet', 'dhcp', 'domain', 'start', 'extra'];
    const start = Date.now();
    for (let i = 0; i < 5000; i++) {
      const input: Record<string, unknown> = {};
      for (let k = rnd(7); k > 0; k--) input[keys[rnd(keys.length)]!] = atoms[rnd(atoms.length)];
      if (rnd(3) === 0) input['name'] = 'n' + String(i);
      const value = rnd(20) === 0 ? atoms[rnd(atoms.length)] : input;
      try {
        const def = parseNetworkDefinition(value);
        expect(def.name).toMatch(/^[A-Za-z0-9]/);
        if (def.subnet) expect(contains(parseSubnet(def.subnet), parseIpv4(def.dhcp!.start)!)).toBe(true);
      } catch (err) {
        if (!isVirtkitError(err) || err.code !== 'network.invalid') throw err;
      }
    }
    expect(Date.now() - start).toBeLessThan(10_000);
  });
});

describe('host configuration', () => {
  const nat = parseNetworkDefinition({ name: 'lab', mode: 'nat', subnet: '192.168.100.0/24', domain: 'lab.test' });
  const iso = parseNetworkDefinition({ name: 'iso', mode: 'isolated', subnet: '10.9.0.0/24' });

  it('nft: nat masquerades what leaves the subnet; isolated drops all forwarding', () => {
    const t = renderNftTable(nat);
    expect(t).toMatch(/^table ip virtkit-lab \{/);
    expect(t).toContain('ip saddr 192.168.100.0/24 ip daddr != 192.168.100.0/24 masquerade');
    const i = renderNftTable(iso);
    expect(i).toContain('iifname "vkbr-iso" drop');
    expect(i).not.toContain('masquerade');
  });

  it('dnsmasq: its own bridge only, its own files, no router for an isolated network', () => {
    const args = renderDnsmasqArgs(nat, dnsmasqPaths('/s/networks/lab'));
    expect(args).toContain('--conf-file=/dev/null');
    expect(args).toContain('--interface=vkbr-lab');
    expect(args).toContain('--bind-interfaces');
    expect(args).toContain('--pid-file=/s/networks/lab/dnsmasq.pid');
    expect(args).toContain('--dhcp-range=192.168.100.2,192.168.100.254,255.255.255.0,1h');
    expect(args).toContain('--domain=lab.test');
    expect(args).toContain('--dhcp-option=option:router,192.168.100.1');
    expect(renderDnsmasqArgs(iso, dnsmasqPaths('/s/networks/iso'))).toContain('--dhcp-option=option:router');
  });

  it('leases: dnsmasq lines read, bad ones skipped', () => {
    expect(parseLeases('1700000000 52:54:00:AA:bb:cc 10.9.0.5 g1 01:52:54:00:aa:bb:cc\njunk\n1 zz 1.2.3.4 *\n1700000001 52:54:00:00:00:01 10.9.0.6 * *\n')).toEqual([
      { expiry: 1700000000, mac: '52:54:00:aa:bb:cc', ip: '10.9.0.5', hostname: 'g1', clientId: '01:52:54:00:aa:bb:cc' },
      { expiry: 1700000001, mac: '52:54:00:00:00:01', ip: '10.9.0.6' },
    ]);
  });

  it('rates: tc units, a wrong unit refused', () => {
    expect(parseRate('10Mbit', 'x')).toBe(10_000_000);
    expect(parseRate('1.5kbps', 'x')).toBe(12_000);
    expect(() => parseRate('10Mfurlongs', 'bandwidth.inbound')).toThrow(/bandwidth.inbound: must be a rate like 10Mbit/);
  });
});
