/**
 * Network verbs (virsh names, docs/networks.md): net-define, net-start, net-destroy,
 * net-undefine, net-list, net-info, net-autostart, net-dhcp-leases, net-dumpdef, and
 * domifaddr (a domain's addresses from its networks' DHCP leases).
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import YAML from 'yaml';
import type { NetworkInfo } from '../../api/index.js';
import { importLibvirtNetworkXml } from '../../formats/index.js';
import { VirtkitError } from '../../util/errors.js';
import { escapeForTerminal } from '../../util/terminal-text.js';
import { printJson, printTable, withClient, withConnect, type ConnectOpts } from './connect.js';

type Opts = ConnectOpts & { json?: boolean };

/** A network definition file: libvirt network XML when it starts with "<", JSON when it parses as JSON, else YAML. */
export async function readNetworkFile(file: string): Promise<unknown> {
  const text = await readFile(file, 'utf8').catch((err: unknown) => {
    throw new VirtkitError('definition.not-found', `cannot read ${file}: ${(err as Error).message}`, { file });
  });
  if (/^\uFEFF?\s*</.test(text)) return importLibvirtNetworkXml(text);
  try {
    return text.trimStart().startsWith('{') ? JSON.parse(text) as unknown : YAML.parse(text) as unknown;
  } catch (err) {
    throw new VirtkitError('network.invalid', `${file}: not YAML or JSON: ${(err as Error).message}`, { file });
  }
}

export function describeNetwork(n: NetworkInfo): string {
  const d = n.definition;
  const rows: [string, string][] = [
    ['Name', n.name], ['Mode', n.mode], ['Active', n.active ? 'yes' : 'no'], ['Autostart', n.autostart ? 'yes' : 'no'],
    ...(n.bridge ? [['Bridge', n.bridge] as [string, string]] : []),
    ...(d.subnet ? [['Subnet', d.subnet] as [string, string]] : []),
    ...(d.address ? [['Address', d.address] as [string, string]] : []),
    ...(d.dhcp ? [['DHCP range', `${d.dhcp.start} - ${d.dhcp.end}`] as [string, string]] : []),
    ...(d.domain ? [['DNS domain', d.domain] as [string, string]] : []),
    ...(n.dnsmasqPid !== undefined ? [['dnsmasq pid', String(n.dnsmasqPid)] as [string, string]] : []),
    ['Domains', n.domains.join(', ') || '-'],
  ];
  return rows.map(([k, v]) => `${`${k}:`.padEnd(15)} ${v}\n`).join('');
}

export function register(program: Command): void {
  withConnect(program.command('net-define')
    .description('define a network from a YAML, JSON or libvirt network XML file: {name, mode: nat|isolated|bridge|user, bridge?, subnet?, dhcp?: {start, end}, domain?}')
    .argument('<file>', 'the definition file')
    .option('--json', 'print the network info as JSON')
    .addHelpText('after', '\nExample file:\n  name: lab\n  mode: nat\n  subnet: 192.168.100.0/24\n  domain: lab.test\n'))
    .action(async (file: string, o: Opts) => {
      const definition = await readNetworkFile(file);
      const info = await withClient(o, (c) => c.networkDefine(definition));
      if (o.json) printJson(info);
      else process.stdout.write(`Network ${info.name} defined from ${file}\n`);
    });

  withConnect(program.command('net-start')
    .description('start a network: its bridge, nftables table and dnsmasq (they outlive the daemon)')
    .argument('<network>', 'network name'))
    .action(async (network: string, o: Opts) => {
      await withClient(o, (c) => c.networkStart(network));
      process.stdout.write(`Network ${network} started\n`);
    });

  withConnect(program.command('net-destroy')
    .description('stop a network; refused while running guests use it unless --force')
    .argument('<network>', 'network name')
    .option('--force', 'stop it even though running guests are cut off'))
    .action(async (network: string, o: Opts & { force?: boolean }) => {
      await withClient(o, (c) => c.networkDestroy(network, o.force === true));
      process.stdout.write(`Network ${network} destroyed\n`);
    });

  withConnect(program.command('net-undefine')
    .description('remove an inactive network\'s definition')
    .argument('<network>', 'network name'))
    .action(async (network: string, o: Opts) => {
      await withClient(o, (c) => c.networkUndefine(network));
      process.stdout.write(`Network ${network} has been undefined\n`);
    });

  withConnect(program.command('net-list')
    .description('list active networks (all with --all)')
    .option('--all', 'include inactive networks')
    .option('--name', 'print names only, one per line')
    .option('--json', 'print as JSON'))
    .action(async (o: Opts & { all?: boolean; name?: boolean }) => {
      const { networks } = await withClient(o, (c) => c.networkList({ all: o.all === true }));
      if (o.json) printJson(networks);
      else if (o.name) for (const n of networks) process.stdout.write(`${n.name}\n`);
      else printTable(['Name', 'State', 'Autostart', 'Mode', 'Bridge', 'Subnet'],
        networks.map((n) => [n.name, n.active ? 'active' : 'inactive', n.autostart ? 'yes' : 'no', n.mode, n.bridge ?? '-', n.definition.subnet ?? '-']));
    });

  withConnect(program.command('net-info')
    .description('show a network: mode, state, bridge, subnet, DHCP range, dnsmasq, guests')
    .argument('<network>', 'network name')
    .option('--json', 'print as JSON'))
    .action(async (network: string, o: Opts) => {
      const info = await withClient(o, (c) => c.networkInfo(network));
      if (o.json) printJson(info);
      else process.stdout.write(describeNetwork(info));
    });

  withConnect(program.command('net-autostart')
    .description('start the network when the daemon starts')
    .argument('<network>', 'network name')
    .option('--disable', 'turn autostart off'))
    .action(async (network: string, o: Opts & { disable?: boolean }) => {
      const enabled = o.disable !== true;
      await withClient(o, (c) => c.networkSetAutostart(network, enabled));
      process.stdout.write(`Network ${network} ${enabled ? 'marked as autostarted' : 'unmarked as autostarted'}\n`);
    });

  withConnect(program.command('net-dhcp-leases')
    .description('the DHCP leases dnsmasq handed out on a network')
    .argument('<network>', 'network name')
    .option('--json', 'print as JSON'))
    .action(async (network: string, o: Opts) => {
      const { leases } = await withClient(o, (c) => c.networkLeases(network));
      if (o.json) printJson(leases);
      else printTable(['Expiry Time', 'MAC address', 'IP address', 'Hostname', 'Domain'],
        leases.map((l) => [new Date(l.expiry * 1000).toISOString().replace('T', ' ').slice(0, 19), l.mac, `${l.ip}/${l.prefix}`,
          escapeForTerminal(l.hostname ?? '-'), l.domain ?? '-']));
    });

  withConnect(program.command('net-dumpdef')
    .description('print a network\'s normalized definition (YAML, or JSON with --json)')
    .argument('<network>', 'network name')
    .option('--json', 'print as JSON'))
    .action(async (network: string, o: Opts) => {
      const info = await withClient(o, (c) => c.networkInfo(network));
      if (o.json) printJson(info.definition);
      else process.stdout.write(YAML.stringify(info.definition));
    });

  withConnect(program.command('domifaddr')
    .description('a domain\'s interface addresses, from its networks\' DHCP leases')
    .argument('<name>', 'domain name')
    .option('--json', 'print as JSON'))
    .action(async (name: string, o: Opts) => {
      const { interfaces } = await withClient(o, (c) => c.domainAddresses(name));
      if (o.json) printJson(interfaces);
      else printTable(['Name', 'MAC address', 'Network', 'Tap', 'vhost', 'Address'],
        interfaces.map((i) => [i.nic, i.mac, i.network, i.tap ?? '-', i.vhost ?? '-', i.address ?? '-']));
    });
}
