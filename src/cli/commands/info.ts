/** Read verbs: list, dominfo, domstate. */
import type { Command } from 'commander';
import { formatBytes, printJson, printTable, withClient, withConnect, type ConnectOpts } from './connect.js';

type Opts = ConnectOpts & { json?: boolean };

export function register(program: Command): void {
  withConnect(program.command('list')
    .description('list running domains (all with --all)')
    .option('--all', 'include domains that are not running')
    .option('--name', 'print names only, one per line')
    .option('--json', 'print as JSON'))
    .action(async (o: Opts & { all?: boolean; name?: boolean }) => {
      const { domains } = await withClient(o, (c) => c.list({ all: o.all === true }));
      if (o.json) printJson(domains);
      else if (o.name) for (const d of domains) process.stdout.write(`${d.name}\n`);
      else {
        printTable(['Name', 'State', 'Autostart', 'Tainted', 'UUID'], domains.map((d) => [
          d.name, d.degraded ? `${d.state} (degraded)` : d.state, d.autostart ? 'yes' : 'no', d.tainted.length ? d.tainted.join(',') : '-', d.uuid,
        ]));
      }
    });

  withConnect(program.command('dominfo')
    .description('show a domain\'s information')
    .argument('<name>', 'domain name')
    .option('--json', 'print as JSON'))
    .action(async (name: string, o: Opts) => {
      const i = await withClient(o, (c) => c.info(name));
      if (o.json) { printJson(i); return; }
      // While it runs: which path each NIC's packets take (vhost: auto resolved at start).
      const nics = i.pid === undefined ? [] : (await withClient(o, (c) => c.domainAddresses(name))).interfaces.map((n): [string, string] => [
        `NIC ${n.nic}`,
        n.network === 'user' ? 'user networking (QEMU)' : `network ${n.network}, tap ${n.tap ?? '-'}, ${n.vhost === 'on' ? 'vhost on (vhost-net in the kernel)' : 'vhost off (virtio-net in QEMU)'}`,
      ]);
      const rows: [string, string][] = [
        ['Name', i.name], ['UUID', i.uuid],
        ['State', i.reason ? `${i.state} (${i.reason})` : i.state],
        ...(i.pid !== undefined ? [['PID', String(i.pid)] as [string, string]] : []),
        ...(i.accel !== undefined ? [['Accelerator', i.accel] as [string, string]] : []),
        ['Memory', formatBytes(i.memory)], ['vCPUs', i.maxVcpus !== undefined ? `${i.vcpus} (maximum ${i.maxVcpus})` : String(i.vcpus)],
        ['Autostart', i.autostart ? 'enable' : 'disable'],
        ['Tainted', i.tainted.length ? i.tainted.join(', ') : 'no'],
        ...(i.degraded ? [['Monitor', 'lost, reconnecting (degraded: monitor calls fail meanwhile)'] as [string, string]] : []),
        ...(i.definitionDiffers !== undefined
          ? [['Definition', i.definitionDiffers ? 'saved differs from live (applies at next start; dumpdef --live)' : 'live = saved'] as [string, string]]
          : []),
        ...nics,
        ...(i.runDir !== undefined ? [['Run dir', i.runDir] as [string, string]] : []),
        ['Managed save', i.managedSave ? 'yes (the next start resumes from it)' : 'no'],
      ];
      for (const [k, v] of rows) process.stdout.write(`${`${k}:`.padEnd(15)} ${v}\n`);
    });

  withConnect(program.command('domstate')
    .description('show a domain\'s state')
    .argument('<name>', 'domain name')
    .option('--reason', 'also show why it is in that state')
    .option('--json', 'print as JSON'))
    .action(async (name: string, o: Opts & { reason?: boolean }) => {
      const s = await withClient(o, (c) => c.state(name));
      if (o.json) printJson(s);
      else process.stdout.write(o.reason && s.reason ? `${s.state} (${s.reason})\n` : `${s.state}\n`);
    });
}
