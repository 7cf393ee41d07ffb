/**
 * Hot-plug, memory and CPU verbs, under virsh's names (docs/hotplug.md, docs/memory-cpus.md):
 * attach-disk, detach-disk, attach-interface, detach-interface, domblklist, domiflist, setmem,
 * setmaxmem, dommemstat, setvcpus, vcpuinfo.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { Option, type Command } from 'commander';
import type { DeviceChange } from '../../api/index.js';
import { DiskBuses, DiskFormats, NicModels, formatSize, parseSize } from '../../conf/index.js';
import { VirtkitError } from '../../util/errors.js';
import { printJson, printTable, withClient, withConnect, type ConnectOpts } from './connect.js';

type ScopeOpts = ConnectOpts & { live?: boolean; config?: boolean; json?: boolean };

const VolumeRef = /^[A-Za-z0-9][A-Za-z0-9_.-]*\/[A-Za-z0-9][A-Za-z0-9_.+-]*$/;

/** SOURCE: a host file (relative to the current directory), or `pool/volume` when no such file exists. */
export function diskSource(source: string): { source: string } | { volume: string } {
  const path = resolve(source);
  if (!existsSync(path) && !source.startsWith('.') && VolumeRef.test(source)) return { volume: source };
  return { source: path };
}

function scopeOf(o: ScopeOpts & { persistent?: boolean }): { live?: true; config?: true } {
  return { ...(o.live || o.persistent ? { live: true as const } : {}), ...(o.config || o.persistent ? { config: true as const } : {}) };
}

function withScope(cmd: Command): Command {
  return cmd
    .option('--live', 'change the running guest (default for a running guest: --live --config)')
    .option('--config', 'change the saved definition, used by the next start (default for a stopped guest)')
    // virsh's spelling of --live --config
    .addOption(new Option('--persistent', 'both the running guest and the saved definition').hideHelp())
    .option('--json', 'print the result as JSON');
}

function reportChange(change: DeviceChange, what: 'Disk' | 'Interface', verb: 'attached' | 'detached', o: ScopeOpts): void {
  if (o.json) return printJson(change);
  const where = [change.live ? 'the running guest' : '', change.config ? 'the saved definition' : ''].filter(Boolean).join(' and ');
  const name = change.kind === 'disk' ? change.target ?? change.id : `${change.id} (${change.mac ?? ''})`;
  process.stdout.write(`${what} ${verb} successfully: ${name}, ${where}\n`);
}

/** A size as the definition writes it (`256MiB`, `1GiB`; a plain number is bytes). */
function sizeArg(text: string): number {
  return parseSize(text);
}

export function register(program: Command): void {
  withScope(withConnect(program.command('attach-disk')
    .description('attach a disk image to a domain (hot-plug when it runs)')
    .argument('<name>', 'domain name')
    .argument('<source>', 'image file on the host, or pool/volume')
    .argument('<target>', 'guest-side name: vdb (virtio), sdb (scsi)...')
    .addOption(new Option('--format <format>', 'image format (never guessed)').choices([...DiskFormats]).default('raw'))
    .addOption(new Option('--subdriver <format>', 'the format, as virsh spells it').choices([...DiskFormats]).hideHelp())
    .option('--readonly', 'attach read-only')
    .addOption(new Option('--bus <bus>', 'virtio or scsi (default: from the target\'s prefix)').choices(DiskBuses.filter((b) => b !== 'ide')))
    .addOption(new Option('--targetbus <bus>', 'the bus, as virsh spells it').choices(DiskBuses.filter((b) => b !== 'ide')).hideHelp())
    .addHelpText('after', '\nExamples:\n  virtkit attach-disk demo /var/lib/images/data.qcow2 vdb --format qcow2\n  virtkit attach-disk demo images/data.raw sdb --bus scsi --live\n')))
    .action(async (name: string, source: string, target: string, o: ScopeOpts & { format: 'raw' | 'qcow2'; subdriver?: 'raw' | 'qcow2'; readonly?: boolean; bus?: 'virtio' | 'scsi'; targetbus?: 'virtio' | 'scsi' }) => {
      const bus = o.bus ?? o.targetbus;
      const change = await withClient(o, (c) => c.attachDisk(name, {
        ...diskSource(source), target, format: o.subdriver ?? o.format, ...(o.readonly ? { readonly: true } : {}), ...(bus ? { bus } : {}), ...scopeOf(o),
      }));
      reportChange(change, 'Disk', 'attached', o);
    });

  withScope(withConnect(program.command('detach-disk')
    .description('detach a disk (by target or id); waits for the guest to release it')
    .argument('<name>', 'domain name')
    .argument('<target>', 'the disk\'s target (vdb) or id')))
    .action(async (name: string, target: string, o: ScopeOpts) => {
      reportChange(await withClient(o, (c) => c.detachDisk(name, target, scopeOf(o))), 'Disk', 'detached', o);
    });

  withScope(withConnect(program.command('attach-interface')
    .description('attach a network interface (user-mode NAT, or a virtkit network with --network) to a domain (hot-plug when it runs)')
    .argument('<name>', 'domain name')
    .addOption(new Option('--model <model>', 'NIC model').choices([...NicModels]).default('virtio'))
    .option('--mac <mac>', 'MAC address (default: random 52:54:00:xx:xx:xx)')
    .option('--network <name>', 'user (default) or a virtkit network (docs/networks.md): the manager makes the tap')))
    .action(async (name: string, o: ScopeOpts & { model: 'virtio' | 'e1000' | 'rtl8139'; mac?: string; network?: string }) => {
      const change = await withClient(o, (c) => c.attachInterface(name, { model: o.model, ...(o.mac ? { mac: o.mac } : {}), ...(o.network ? { network: o.network } : {}), ...scopeOf(o) }));
      reportChange(change, 'Interface', 'attached', o);
    });

  withScope(withConnect(program.command('detach-interface')
    .description('detach a network interface (by MAC or id); waits for the guest to release it')
    .argument('<name>', 'domain name')
    .argument('<mac-or-id>', 'the interface\'s MAC address or id (net1)')))
    .action(async (name: string, device: string, o: ScopeOpts) => {
      reportChange(await withClient(o, (c) => c.detachInterface(name, device, scopeOf(o))), 'Interface', 'detached', o);
    });

  withConnect(program.command('domblklist')
    .description('list the disks of the running guest (or of the saved definition)')
    .argument('<name>', 'domain name')
    .option('--inactive', 'list the saved definition\'s disks')
    .option('--details', 'also show bus, format and mode')
    .option('--json', 'print as JSON'))
    .action(async (name: string, o: ConnectOpts & { inactive?: boolean; details?: boolean; json?: boolean }) => {
      const { disks } = await withClient(o, (c) => c.blockList(name, o.inactive ? { inactive: true } : {}));
      if (o.json) return printJson(disks);
      if (o.details) printTable(['Target', 'Bus', 'Format', 'Mode', 'Source'], disks.map((d) => [d.target, d.bus, d.format, d.readonly ? 'readonly' : 'readwrite', d.source]));
      else printTable(['Target', 'Source'], disks.map((d) => [d.target, d.source]));
    });

  withConnect(program.command('domiflist')
    .description('list the network interfaces of the running guest (or of the saved definition)')
    .argument('<name>', 'domain name')
    .option('--inactive', 'list the saved definition\'s interfaces')
    .option('--json', 'print as JSON'))
    .action(async (name: string, o: ConnectOpts & { inactive?: boolean; json?: boolean }) => {
      const { interfaces } = await withClient(o, (c) => c.interfaceList(name, o.inactive ? { inactive: true } : {}));
      if (o.json) return printJson(interfaces);
      // As virsh: Type network (a virtkit network, named in Source) or user (QEMU's user networking, no source).
      printTable(['Interface', 'Type', 'Source', 'Model', 'MAC'], interfaces.map((n) => [n.id, n.type === 'user' ? 'user' : 'network', n.type === 'user' ? '-' : n.type, n.model, n.mac]));
    });

  withConnect(program.command('setmem')
    .description('set the memory a running guest may use (balloon target); waits until it settles')
    .argument('<name>', 'domain name')
    .argument('<size>', 'a size like 256MiB or 1GiB (a plain number is bytes)')
    .option('--live', 'accepted for virsh compatibility: setmem always changes the running guest')
    .option('--json', 'print the result as JSON'))
    .action(async (name: string, size: string, o: ConnectOpts & { json?: boolean }) => {
      const r = await withClient(o, (c) => c.setMemory(name, sizeArg(size)));
      if (o.json) return printJson(r);
      const how = r.settled ? 'the guest has' : 'the guest has not settled yet; it has';
      process.stdout.write(`Memory target of '${name}' set to ${formatSize(r.target)}; ${how} ${formatSize(r.actual)}\n`);
    });

  withConnect(program.command('setmaxmem')
    .description('set the maximum (boot) memory in the saved definition; applies at the next start')
    .argument('<name>', 'domain name')
    .argument('<size>', 'a size like 512MiB or 1GiB (a plain number is bytes)')
    .option('--config', 'accepted for virsh compatibility: setmaxmem always changes the saved definition')
    .option('--json', 'print the result as JSON'))
    .action(async (name: string, size: string, o: ConnectOpts & { json?: boolean }) => {
      const r = await withClient(o, (c) => c.setMaxMemory(name, sizeArg(size)));
      if (o.json) return printJson(r);
      const running = r.liveMemory !== undefined && r.liveMemory !== r.memory ? ` (the running guest keeps ${formatSize(r.liveMemory)} until it is restarted)` : '';
      process.stdout.write(`Maximum memory of '${name}' set to ${formatSize(r.memory)}${running}\n`);
    });

  withConnect(program.command('dommemstat')
    .description('balloon size and the guest\'s memory statistics, in KiB (--json: bytes)')
    .argument('<name>', 'domain name')
    .option('--json', 'print as JSON (bytes)'))
    .action(async (name: string, o: ConnectOpts & { json?: boolean }) => {
      const r = await withClient(o, (c) => c.memoryStats(name));
      if (o.json) return printJson(r);
      const kib = (bytes: number): string => String(Math.floor(bytes / 1024));
      const counts = new Set(['major_fault', 'minor_fault', 'hugetlb_pgalloc', 'hugetlb_pgfail']);
      const lines = [`actual ${kib(r.actual)}`, ...Object.entries(r.stats).map(([k, v]) => `${k} ${counts.has(k) ? String(v) : kib(v)}`)];
      if (r.lastUpdate !== undefined) lines.push(`last_update ${r.lastUpdate}`);
      process.stdout.write(`${lines.join('\n')}\n`);
    });

  withScope(withConnect(program.command('setvcpus')
    .description('set the number of vCPUs: hot-plug up to maxvcpus (running guest), and/or the saved definition')
    .argument('<name>', 'domain name')
    .argument('<count>', 'number of vCPUs')))
    .action(async (name: string, countText: string, o: ScopeOpts) => {
      const count = Number(countText);
      if (!Number.isInteger(count)) throw new VirtkitError('argument.invalid', `the vCPU count must be a whole number, got ${JSON.stringify(countText)}`, { field: 'count' });
      const r = await withClient(o, (c) => c.setVcpus(name, { count, ...scopeOf(o) }));
      if (o.json) return printJson(r);
      const parts = [r.live !== undefined ? `running guest: ${r.live}` : '', r.config !== undefined ? `saved definition: ${r.config}` : ''].filter(Boolean);
      process.stdout.write(`vCPUs of '${name}' set (${parts.join(', ')})\n`);
    });

  withConnect(program.command('vcpuinfo')
    .description('the running guest\'s vCPUs: host thread id and CPU time')
    .argument('<name>', 'domain name')
    .option('--json', 'print as JSON'))
    .action(async (name: string, o: ConnectOpts & { json?: boolean }) => {
      const { vcpus } = await withClient(o, (c) => c.vcpuInfo(name));
      if (o.json) return printJson(vcpus);
      const blocks = vcpus.map((v) => [
        ['VCPU', String(v.vcpu)], ['Thread', String(v.threadId)],
        ['CPU time', v.cpuTimeSeconds !== undefined ? `${v.cpuTimeSeconds.toFixed(1)}s` : '-'], ['Hot-plugged', v.hotplugged ? 'yes' : 'no'],
      ].map(([k, val]) => `${`${k}:`.padEnd(15)} ${val}\n`).join(''));
      process.stdout.write(blocks.join('\n'));
    });
}
