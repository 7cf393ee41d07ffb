/** `virtkit guestkit DIR [--name NAME] [--no-acpi] [--kernel PATH]`: build the small bootable guest into DIR. */
import type { Command } from 'commander';
import { relative } from 'node:path';
import { buildGuest } from '../../guestkit/index.js';

export function register(program: Command): void {
  program.command('guestkit')
    .description('build a small bootable Linux guest (host kernel, busybox, virtio/ext4/ACPI modules) and its definition DIR/guest.yaml')
    .argument('<dir>', 'directory to build into (created if missing)')
    .option('--name <name>', 'name in the definition', 'demo')
    .option('--no-acpi', 'do not power off on the ACPI power button (for testing forced shutdown)')
    .option('--kernel <path>', 'a /boot/vmlinuz-VERSION to use instead of the newest one with installed modules')
    .action(async (dir: string, o: { name: string; acpi: boolean; kernel?: string }) => {
      const built = await buildGuest({ dir, name: o.name, acpi: o.acpi, ...(o.kernel === undefined ? {} : { kernel: o.kernel }) });
      // Paths below the working directory are shown relative to it, others in full.
      const shown = (p: string): string => {
        const rel = relative(process.cwd(), p);
        return rel === '' ? '.' : rel.startsWith('..') ? p : rel;
      };
      const modules = built.modules.join(' ');
      const builtin = built.builtinModules.length > 0 ? ` (built in: ${built.builtinModules.join(' ')})` : '';
      process.stdout.write(
        `Built guest '${o.name}' in ${shown(built.dir)}\n`
        + `  kernel      ${shown(built.kernelPath)}  (${built.kernelFormat === 'pvh' ? 'uncompressed, PVH entry, ' : ''}from ${built.kernel.imagePath})\n`
        + `  initramfs   ${shown(built.initrdPath)}  (busybox ${built.busybox}, ${built.modules.length} modules)\n`
        + `  modules     ${modules}${builtin}\n`
        + `  acpi        ${o.acpi ? 'power button powers off' : 'power button ignored'}\n`
        + `  definition  ${shown(built.definitionPath)}\n`
        + `Run it: virtkit run ${shown(built.definitionPath)}\n`,
      );
    });
}
