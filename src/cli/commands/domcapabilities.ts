/**
 * `virtkit domcapabilities [--json]` (virsh's domcapabilities; docs/firmware.md): what a
 * definition can ask of this host's QEMU: machine types, CPU models, firmware images with
 * their features, and the device models offered for disks, NICs, video, balloon, shared
 * folders and controllers.
 */
import type { Command } from 'commander';
import { printJson, printTable, withClient, withConnect, type ConnectOpts } from './connect.js';

export function register(program: Command): void {
  withConnect(program.command('domcapabilities')
    .description('machine types, CPU models, firmware and device models this host\'s QEMU offers')
    .option('--json', 'print as JSON'))
    .action(async (o: ConnectOpts & { json?: boolean }) => {
      const caps = await withClient(o, (c) => c.domainCapabilities());
      if (o.json) return printJson(caps);
      const out = (line = ''): void => { process.stdout.write(`${line}\n`); };
      out(`QEMU ${caps.version} (${caps.binary}); accelerators: ${caps.accelerators.join(', ')}; KVM ${caps.kvm.usable ? 'usable' : 'not usable'}: ${caps.kvm.reason}`);
      out();
      out('Machines:');
      printTable(['Name', 'Alias', 'Max CPUs', 'Notes'], caps.machines.map((m) => [m.name, m.alias ?? '', String(m.maxCpus),
        [m.isDefault ? 'default' : '', m.deprecated ? 'deprecated' : ''].filter(Boolean).join(', ')]));
      out();
      out(`CPU models: ${caps.cpuModels.join(' ')}`);
      out();
      out(`Firmware (definition's firmware: ${caps.firmware.kinds.join(', ')}):`);
      printTable(['Descriptor', 'Interfaces', 'Device', 'Features', 'Image'], caps.firmware.images.map((f) => [
        f.name, f.interfaces.join(','), f.device, f.features.join(',') || '-', f.executable ?? '-']));
      out();
      out('Devices:');
      printTable(['Purpose', 'Models'], Object.entries(caps.devices).map(([purpose, models]) => [purpose, models.join(' ')]));
      out();
      out(`Definition values here: video ${caps.definition.video.join('|')}; filesystems[].driver ${caps.definition.filesystemDrivers.join('|')}`);
    });
}
