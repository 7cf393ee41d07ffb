/**
 * libvirt network XML (`virsh net-dumpxml`) -> virtkit network definition input
 * (docs/formats.md#libvirt-network-xml). The forms virtkit's networks can be:
 *
 *   <network><name>default</name><forward mode='nat'/><bridge name='virbr0'/>
 *     <ip address='192.168.122.1' netmask='255.255.255.0'><dhcp><range start= end=/></dhcp></ip>
 *   </network>
 *
 * no `<forward>`: isolated; `<forward mode='bridge'/><bridge name='br0'/>`: bridge. What else
 * it holds is refused by XPath (definition.unsupported), as the domain importer does, except
 * the identity libvirt adds (`uuid`, the bridge's `mac`, `stp`, `delay`), which is ignored.
 * The result is checked by net/definition.ts like a YAML definition.
 */
import { VirtkitError } from '../../util/errors.js';
import { escapeForTerminal } from '../../util/terminal-text.js';
import { readXml, type XmlElement } from './xml-reader.js';

function quoted(value: unknown): string {
  return escapeForTerminal(JSON.stringify(value) ?? 'nothing');
}

function ipv4(text: string | undefined): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text ?? '');
  if (m === null) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return undefined;
  return parts.reduce((acc, p) => acc * 256 + p, 0);
}

function dotted(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}

/** A netmask's prefix length, or undefined when it is not contiguous ones then zeros. */
function prefixOf(mask: number): number | undefined {
  for (let prefix = 0; prefix <= 32; prefix += 1) {
    if (mask === (prefix === 0 ? 0 : (2 ** 32 - 2 ** (32 - prefix)))) return prefix;
  }
  return undefined;
}

/** What the walk read: everything else is reported. */
class Seen {
  private readonly read = new Map<XmlElement, Set<string>>();
  el(e: XmlElement): XmlElement {
    if (!this.read.has(e)) this.read.set(e, new Set());
    return e;
  }
  attr(e: XmlElement, name: string): string | undefined {
    this.el(e);
    this.read.get(e)?.add(name);
    return e.attrs.get(name);
  }
  child(e: XmlElement, name: string): XmlElement | undefined {
    const found = e.children.filter((c) => c.name === name);
    return found.length === 0 ? undefined : this.el(found[0] as XmlElement);
  }
  /** Mark an element and all it holds read (identity libvirt adds, ignored). */
  ignore(e: XmlElement | undefined): void {
    if (e === undefined) return;
    this.read.set(e, new Set(e.attrs.keys()));
    for (const c of e.children) this.ignore(c);
  }
  unread(root: XmlElement): string[] {
    const out: string[] = [];
    const visit = (e: XmlElement): void => {
      const attrs = this.read.get(e);
      if (attrs === undefined) {
        out.push(e.xpath);
        return;
      }
      for (const k of e.attrs.keys()) if (!attrs.has(k)) out.push(`${e.xpath}/@${k}`);
      for (const c of e.children) visit(c);
    };
    visit(root);
    return out;
  }
}

function invalid(path: string, message: string): VirtkitError {
  return new VirtkitError('network.invalid', `${path}: ${message}`, { xpath: path, rule: 'libvirt' });
}

/**
 * Read a libvirt network document into network definition input.
 * @throws VirtkitError('definition.invalid' | 'definition.xml-refused') as the domain reader,
 *         VirtkitError('network.invalid') for a value that makes no network,
 *         VirtkitError('definition.unsupported') listing what virtkit's networks cannot be.
 */
export function importLibvirtNetworkXml(text: string): Record<string, unknown> {
  const root = readXml(text);
  if (root.name !== 'network') throw invalid(root.xpath, `the root element must be <network>, got <${escapeForTerminal(root.name)}>`);
  const s = new Seen();
  s.el(root);
  for (const key of ['connections', 'ipv6', 'trustGuestRxFilters']) s.attr(root, key);
  const out: Record<string, unknown> = {};
  const name = s.child(root, 'name');
  if (name === undefined) throw invalid('/network/name', 'is required');
  out['name'] = name.text.trim();
  s.ignore(s.child(root, 'uuid'));
  s.ignore(s.child(root, 'mac'));
  const forward = s.child(root, 'forward');
  const mode = forward === undefined ? 'isolated' : s.attr(forward, 'mode') ?? 'nat';
  const unsupported: string[] = [];
  if (mode !== 'nat' && mode !== 'isolated' && mode !== 'bridge') unsupported.push(`${forward?.xpath ?? '/network/forward'}/@mode: ${quoted(mode)} is not supported: nat, bridge or none (isolated)`);
  out['mode'] = mode;
  const bridge = s.child(root, 'bridge');
  if (bridge !== undefined) {
    const bridgeName = s.attr(bridge, 'name');
    if (bridgeName !== undefined) out['bridge'] = bridgeName;
    s.attr(bridge, 'stp');
    s.attr(bridge, 'delay');
  }
  const domain = s.child(root, 'domain');
  if (domain !== undefined) {
    const domainName = s.attr(domain, 'name');
    if (domainName !== undefined) out['domain'] = domainName;
    s.attr(domain, 'localOnly');
  }
  const ips = root.children.filter((c) => c.name === 'ip' && (c.attrs.get('family') ?? 'ipv4') === 'ipv4');
  const ip = ips[0];
  if (ip !== undefined && mode !== 'bridge') {
    s.el(ip);
    s.attr(ip, 'family');
    const address = ipv4(s.attr(ip, 'address'));
    const maskText = s.attr(ip, 'netmask');
    const prefixText = s.attr(ip, 'prefix');
    const prefix = maskText !== undefined ? prefixOf(ipv4(maskText) ?? -1) : /^\d{1,2}$/.test(prefixText ?? '') ? Number(prefixText) : undefined;
    if (address === undefined) throw invalid(`${ip.xpath}/@address`, `must be an IPv4 address, got ${quoted(ip.attrs.get('address'))}`);
    if (prefix === undefined || prefix > 32) throw invalid(`${ip.xpath}/@${maskText !== undefined ? 'netmask' : 'prefix'}`, `must be a netmask or prefix length, got ${quoted(maskText ?? prefixText)}`);
    const size = 2 ** (32 - prefix);
    const network = Math.floor(address / size) * size;
    out['subnet'] = `${dotted(network)}/${prefix}`;
    // virtkit's bridge takes the subnet's first address, as libvirt's default network does.
    if (address !== network + 1) unsupported.push(`${ip.xpath}/@address: ${dotted(address)} is not supported: virtkit's bridge takes the subnet's first address (${dotted(network + 1)})`);
    const dhcp = s.child(ip, 'dhcp');
    const range = dhcp === undefined ? undefined : s.child(dhcp, 'range');
    if (range !== undefined) out['dhcp'] = { start: s.attr(range, 'start'), end: s.attr(range, 'end') };
  }
  for (const path of s.unread(root)) if (!unsupported.some((u) => u.startsWith(`${path}:`))) unsupported.push(`${path}: not supported by virtkit's networks`);
  if (unsupported.length > 0) {
    throw new VirtkitError('definition.unsupported', `${unsupported.length} element(s) or attribute(s) of the network cannot be honoured:\n${unsupported.slice(0, 100).map((u) => `  ${u}`).join('\n')}`,
      { unsupported: unsupported.map((u) => ({ xpath: u.slice(0, u.indexOf(':')), reason: u.slice(u.indexOf(':') + 2) })) });
  }
  return out;
}
