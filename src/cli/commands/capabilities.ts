/**
 * `virtkit capabilities [--json]`: what the QEMU binary offers and which accelerator
 * `accel: auto` would pick, with the reason (like `virsh capabilities` / `domcapabilities`).
 */
import type { Command } from 'commander';
import { probeCapabilities, resolveAccel, type QemuCapabilities } from '../../qemu/index.js';

interface CapabilitiesOptions {
  json?: boolean;
  binary?: string;
  refresh?: boolean;
}

export function register(program: Command): void {
  program
    .command('capabilities')
    .description('probe the QEMU binary: version, machines, accelerators, CPU models, devices, and the accelerator auto picks')
    .option('--json', 'print the full result as JSON')
    .option('--binary <path>', 'QEMU binary to probe (default qemu-system-x86_64 on PATH)')
    .option('--refresh', 'ignore the cached result and probe again')
    .addHelpText('after', `
Examples:
  virtkit capabilities
  virtkit capabilities --json | jq .kvm`)
    .action(async (opts: CapabilitiesOptions) => {
      const caps = await probeCapabilities({ ...(opts.binary ? { binary: opts.binary } : {}), ...(opts.refresh ? { refresh: true } : {}) });
      const auto = resolveAccel('auto', caps);
      process.stdout.write(opts.json ? `${JSON.stringify({ ...caps, auto }, null, 2)}\n` : formatCapabilities(caps, auto));
    });
}

export function formatCapabilities(caps: QemuCapabilities, auto: { accel: string; reason: string }): string {
  const v = caps.version;
  const machines = caps.machines.filter((m) => !m.deprecated)
    .map((m) => `${m.name}${m.alias ? ` (${m.alias})` : ''}${m.isDefault ? ' [default]' : ''}`);
  return [
    `binary:        ${caps.binary}`,
    `version:       ${v.major}.${v.minor}.${v.micro}${v.package ? ` (${v.package})` : ''}`,
    `accelerators:  ${caps.accelerators.join(', ')}`,
    `kvm:           ${caps.kvm.usable ? 'usable' : 'not usable'}: ${caps.kvm.reason}`,
    `accel auto:    ${auto.accel} (${auto.reason})`,
    `machines:      ${machines.length}: ${machines.join(', ')}`,
    `cpu models:    ${caps.cpuModels.length}: ${caps.cpuModels.join(', ')}`,
    `devices:       ${caps.devices.length} (--json lists them)`,
    '',
  ].join('\n');
}
