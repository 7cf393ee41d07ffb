/**
 * `virtkit argv DEF [--json]`: the QEMU command line a definition makes, like
 * `virsh domxml-to-native`. Nothing is started. The run directory is the one `virtkit run`
 * would create (its random suffix shown as XXXXXX) unless --run-dir names one.
 */
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import type { Command } from 'commander';
import type { DomainDefinition } from '../../conf/index.js';
import { FormatOptionHelp, loadDefinitionAnyFormat } from './definition-input.js';
import { planGuestBoot, type BootPlan } from '../../guestfs/boot/index.js';
import { buildCommand, resolveFsDrivers, type CommandContext, type QemuCommand } from '../../qemu/command/index.js';
import { OvmfDefaults, VarsFileName } from '../../qemu/firmware/index.js';
import { virtiofsdPath } from '../../qemu/virtiofs/index.js';
import { DEFAULT_QEMU_BINARY, probeCapabilities, resolveAccel } from '../../qemu/index.js';
import { VirtkitError } from '../../util/errors.js';
import { escapeForTerminal } from '../../util/terminal-text.js';

interface ArgvOptions {
  json?: boolean;
  runDir?: string;
  binary?: string;
  accel?: string;
  format?: string;
  lenient?: boolean;
}

/** Where `virtkit run` puts a guest's run directory: $XDG_RUNTIME_DIR/virtkit/run, else the temp dir. */
export function defaultRunDir(name: string, env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env['XDG_RUNTIME_DIR'];
  const parent = xdg !== undefined && xdg !== '' && isAbsolute(xdg) ? join(xdg, 'virtkit', 'run') : tmpdir();
  return join(parent, `virtkit-run-${name.slice(0, 32)}-XXXXXX`);
}

const ShellSafe = /^[A-Za-z0-9_@%+=:,./-]+$/;

export function shellQuote(word: string): string {
  return ShellSafe.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * The command as a shell would take it, one option (with its value) per line:
 * environment assignments, the binary, then `-option value` pairs.
 */
export function formatShellCommand(command: QemuCommand): string {
  const lines = Object.entries(command.env).map(([key, value]) => `${key}=${shellQuote(value)}`);
  lines.push(shellQuote(command.binary));
  const argv = command.argv;
  for (let i = 0; i < argv.length; i++) {
    const option = argv[i] ?? '';
    const value = argv[i + 1];
    if (option.startsWith('-') && value !== undefined && !value.startsWith('-')) {
      lines.push(`${shellQuote(option)} ${shellQuote(value)}`);
      i++;
    } else lines.push(shellQuote(option));
  }
  return `${lines.join(' \\\n')}\n`;
}

async function chooseAccel(def: DomainDefinition, requested: string | undefined, binary: string): Promise<{ accel: 'kvm' | 'tcg'; reason: string }> {
  if (requested !== undefined) {
    if (requested !== 'kvm' && requested !== 'tcg') throw new VirtkitError('argument.invalid', `--accel must be kvm or tcg, got ${requested}`);
    return { accel: requested, reason: '--accel' };
  }
  if (def.accel !== 'auto') return { accel: def.accel, reason: `${def.accel} requested by the definition` };
  const resolved = resolveAccel('auto', await probeCapabilities({ binary }));
  // as the driver says it: build.ts gives `cpu: host` TCG's `max`
  if (def.cpu === 'host' && resolved.accel !== 'kvm') return { accel: resolved.accel, reason: `${resolved.reason}; cpu host runs as max under ${resolved.accel}` };
  return resolved;
}

/**
 * The context `virtkit argv` builds with. For `boot.loader: guest` the boot files are what a
 * start would extract, chosen by reading the guest's disk the same way (`plan`), so
 * `-kernel`, `-initrd` and `-append` are the ones start passes; without a plan (a volume disk,
 * which only the manager can resolve) they appear under the names they get then. Volumes
 * appear as placeholders.
 */
export function displayContext(def: DomainDefinition, base: Omit<CommandContext, 'bootFiles' | 'volumePaths'>, plan?: BootPlan): CommandContext {
  const ctx: CommandContext = { ...base };
  if (def.boot.loader === 'guest') {
    ctx.bootFiles = plan !== undefined
      ? { kernel: plan.kernel, ...(plan.initrd === undefined ? {} : { initrd: plan.initrd }), ...(plan.cmdline === undefined ? {} : { cmdline: plan.cmdline }) }
      : { kernel: join(base.runDir, 'boot', 'kernel'), initrd: join(base.runDir, 'boot', 'initrd') };
  }
  const volumes = def.disks.flatMap((disk) => (disk.volume === undefined ? [] : [disk.volume]));
  if (volumes.length > 0) ctx.volumePaths = Object.fromEntries(volumes.map((v) => [v, `<volume ${v}>`]));
  // UEFI: the domain's variable store is made at start (docs/firmware.md); shared folders: auto as this host resolves it
  if (def.firmware === 'uefi') ctx.firmware = { code: OvmfDefaults.code, vars: `<nvram>/${VarsFileName}` };
  if (def.filesystems !== undefined) ctx.filesystemDrivers = resolveFsDrivers(def, existsSync(virtiofsdPath()));
  return ctx;
}

/**
 * For `loader: guest`, what start would extract (errors as start would give them: no entry,
 * a missing kernel); a note on stderr says where in the guest the files are.
 */
async function guestBootPlan(def: DomainDefinition, runDir: string): Promise<BootPlan | undefined> {
  if (def.boot.loader !== 'guest') return undefined;
  if (def.disks[0]?.volume !== undefined) {
    process.stderr.write(`virtkit: boot files: disk 0 is volume ${escapeForTerminal(def.disks[0].volume)}, which only the manager resolves: -kernel and -initrd show where start puts them, without -append\n`);
    return undefined;
  }
  const plan = await planGuestBoot(def, runDir);
  const where = (f: { partition?: number; path: string }): string => `${escapeForTerminal(f.path)} (${f.partition === undefined ? 'whole disk' : `partition ${f.partition}`})`;
  process.stderr.write(`virtkit: boot files: kernel ${where(plan.from.kernel)}${plan.from.initrds.map((i) => `, initrd ${where(i)}`).join('')}: copied into the run dir at start\n`);
  return plan;
}

export function register(program: Command): void {
  program
    .command('argv')
    .description('print the QEMU command line a definition makes, without starting anything (like virsh domxml-to-native)')
    .argument('<definition>', 'definition file: YAML, JSON, libvirt domain XML or a Xen xm/xl config, told apart by content ("-" reads stdin)')
    .option('--format <format>', FormatOptionHelp)
    .option('--lenient', 'libvirt XML and xm: go on even though some elements cannot be honoured (each is reported on stderr)')
    .option('--json', 'print {"binary", "argv", "env"} as JSON')
    .option('--run-dir <dir>', 'run directory to put in the command line (default: the one virtkit run would create)')
    .option('--binary <path>', `QEMU binary (default ${DEFAULT_QEMU_BINARY})`)
    .option('--accel <accel>', 'kvm or tcg, instead of resolving the definition\'s accel (auto probes QEMU)')
    .addHelpText('after', `
Examples:
  virtkit argv guest.yaml
  virtkit argv guest.yaml --json | jq -r '.argv[]'
  virtkit argv guest.yaml --run-dir /tmp/r --accel tcg`)
    .action(async (path: string, opts: ArgvOptions) => {
      const def = await loadDefinitionAnyFormat(path, { ...(opts.format === undefined ? {} : { format: opts.format }), ...(opts.lenient === undefined ? {} : { lenient: opts.lenient }) });
      const binary = opts.binary ?? DEFAULT_QEMU_BINARY;
      const { accel, reason } = await chooseAccel(def, opts.accel, binary);
      const runDir = opts.runDir ?? defaultRunDir(def.name);
      const plan = await guestBootPlan(def, runDir);
      const command = buildCommand(def, displayContext(def, { binary, accel, runDir }, plan));
      if (opts.json) process.stdout.write(`${JSON.stringify({ ...command, accel, accelReason: reason }, null, 2)}\n`);
      else {
        process.stderr.write(`virtkit: accel ${accel} (${reason})\n`);
        process.stdout.write(formatShellCommand(command));
      }
    });
}
