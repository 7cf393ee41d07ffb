/**
 * buildCommand: (definition, context) -> the QEMU command. A pure function: every input that
 * varies between runs (run directory, accelerator, extracted boot files, volume paths) comes in
 * the context; nothing here touches files, the clock, randomness or the environment.
 * QEMU is always spawned without a shell: each string of argv is one argument.
 */
import { bootDiskIndex, BuiltinDeviceIds, type DomainDefinition } from '../../conf/index.js';
import { VirtkitError } from '../../util/errors.js';
import { blockdevProps, diskDeviceProps, hasScsiController, scsiControllerProps } from './disk-props.js';
import { balloonArgs, smpOption } from './balloon-cpus.js';
import { assertPlainValue, jsonOption, keyValueOption, optionValue } from './escape.js';
import { actionOption, lifecycleActions } from './lifecycle.js';
import { filesystemArgs, firmwareArgs, machineExtras, memoryBackendArgs, screenArgs, type FirmwareFiles, type ResolvedFsDriver } from './host-resources.js';
import { hasIsaBus } from './machine.js';
import { netdevProps, nicDeviceProps } from './net-props.js';
import { runPaths } from './run-paths.js';

export interface CommandContext {
  /** QEMU binary, e.g. `qemu-system-x86_64`. */
  binary: string;
  /** The accelerator actually used (definition's `auto` resolved by the caller). */
  accel: 'kvm' | 'tcg';
  /** The guest's run directory (sockets, pidfile, logs: see runPaths). */
  runDir: string;
  /** For boot.loader 'guest': kernel/initrd already extracted to host paths by the caller. */
  bootFiles?: { kernel: string; initrd?: string; cmdline?: string };
  /** For disks naming a volume: host path per 'pool/name', resolved by the caller. */
  volumePaths?: Record<string, string>;
  /** For firmware uefi: OVMF's code image and the domain's own variable store, located by the caller. */
  firmware?: FirmwareFiles;
  /** For filesystems: each one's driver with `auto` resolved for this host (host-resources.ts). */
  filesystemDrivers?: readonly ResolvedFsDriver[];
}

export interface QemuCommand {
  binary: string;
  argv: string[];
  /** Variables to add to the launcher's environment (the definition's qemu.env). */
  env: Record<string, string>;
}

/** CPU model when the definition names none: the host's under KVM; under TCG the plain,
 *  well-tested qemu64 (`max` asks TCG to emulate every feature it can, which boots slower). */
export function defaultCpuModel(accel: CommandContext['accel']): string {
  return accel === 'kvm' ? 'host' : 'qemu64';
}

/** The -cpu model QEMU gets: `host` exists only under KVM, so a definition asking for it that
 *  `accel: auto` resolved to TCG gets `max`, TCG's nearest (every feature it can emulate);
 *  `host` with an explicit `accel: tcg` is refused at validation (conf/validate.ts). */
export function cpuModelFor(cpu: string | undefined, accel: CommandContext['accel']): string {
  if (cpu === undefined) return defaultCpuModel(accel);
  return cpu === 'host' && accel !== 'kvm' ? 'max' : cpu;
}

function kernelArgs(def: DomainDefinition, ctx: CommandContext): string[] {
  const boot = def.boot;
  let files: { kernel: string; initrd?: string | undefined; cmdline?: string | undefined };
  if (boot.loader === 'direct') files = boot;
  else if (boot.loader === 'guest') {
    if (ctx.bootFiles === undefined) {
      throw new VirtkitError('argument.invalid', 'boot.loader guest: the kernel must be extracted from the guest disk first (context bootFiles missing)');
    }
    files = { ...ctx.bootFiles, cmdline: boot.cmdline ?? ctx.bootFiles.cmdline };
  } else return [];
  // -kernel, -initrd and -append take their value verbatim (no key=value parsing): no escaping.
  const args = ['-kernel', assertPlainValue(files.kernel, 'kernel path')];
  if (files.initrd !== undefined) args.push('-initrd', assertPlainValue(files.initrd, 'initrd path'));
  if (files.cmdline !== undefined) args.push('-append', assertPlainValue(files.cmdline, 'kernel command line'));
  return args;
}

function diskHostPath(def: DomainDefinition, index: number, ctx: CommandContext): string {
  const disk = def.disks[index];
  if (disk?.source !== undefined) return disk.source;
  const volume = disk?.volume ?? '';
  const path = ctx.volumePaths?.[volume];
  if (path === undefined) {
    throw new VirtkitError('volume.not-found', `disks[${index}].volume: no host path for volume ${volume}`, { volume });
  }
  return assertPlainValue(path, `path of volume ${volume}`);
}

function diskArgs(def: DomainDefinition, ctx: CommandContext): string[] {
  const args: string[] = [];
  if (hasScsiController(def)) args.push('-device', jsonOption(scsiControllerProps()));
  const bootDisk = bootDiskIndex(def);
  def.disks.forEach((disk, index) => {
    const nodes = blockdevProps(disk, diskHostPath(def, index, ctx));
    const placement = { machine: def.machine, path: `disks[${index}]`, ...(bootDisk === index ? { bootindex: 1 } : {}) };
    args.push('-blockdev', jsonOption(nodes.file), '-blockdev', jsonOption(nodes.format),
      '-device', jsonOption(diskDeviceProps(disk, placement)));
  });
  return args;
}

function nicArgs(def: DomainDefinition): string[] {
  return def.nics.flatMap((nic) => ['-netdev', jsonOption(netdevProps(nic, def.name)), '-device', jsonOption(nicDeviceProps(nic))]);
}

/**
 * The QEMU command for a normalized definition.
 * @throws VirtkitError('argument.invalid') for a context value with newline/NUL or missing
 *         bootFiles, 'volume.not-found' for a volume without a path in ctx.volumePaths,
 *         'definition.invalid' for what only the machine type rules out (an ide target beyond
 *         the machine's slots, a scsi target beyond 255).
 */
export function buildCommand(def: DomainDefinition, ctx: CommandContext): QemuCommand {
  const paths = runPaths(assertPlainValue(ctx.runDir, 'run directory'));
  const argv: string[] = [
    '-nodefaults', '-no-user-config',
    '-name', keyValueOption([['guest', def.name]], 'name'),
    '-uuid', def.uuid,
    '-machine', `${optionValue(def.machine, 'machine')},accel=${ctx.accel}${machineExtras(def, ctx.filesystemDrivers)}`,
    '-cpu', cpuModelFor(def.cpu, ctx.accel),
    '-m', `${def.memory / (1024 * 1024)}M`,
    '-smp', smpOption(def),
    '-pidfile', paths.pidFile,
    '-chardev', `socket,id=qmp,${keyValueOption([['path', paths.qmpSocket]], 'QMP socket')},server=on,wait=off`,
    '-mon', 'chardev=qmp,mode=control',
  ];
  if (def.serial) {
    argv.push(
      '-chardev', `socket,id=console,${keyValueOption([['path', paths.consoleSocket]], 'console socket')},server=on,wait=off,`
        + `${keyValueOption([['logfile', paths.consoleLog]], 'console log')},logappend=on`,
      '-serial', 'chardev:console',
    );
  }
  argv.push('-display', 'none', ...screenArgs(def, paths.vncSocket));
  argv.push('-action', actionOption(lifecycleActions(def)));
  if (hasIsaBus(def.machine)) argv.push('-device', jsonOption({ driver: 'pvpanic', id: BuiltinDeviceIds.panic }));
  argv.push(...memoryBackendArgs(def, ctx.filesystemDrivers), ...firmwareArgs(def, ctx.firmware));
  argv.push(...kernelArgs(def, ctx), ...diskArgs(def, ctx), ...nicArgs(def), ...filesystemArgs(def, ctx.filesystemDrivers, ctx.runDir));
  for (const balloon of balloonArgs(def)) argv.push('-device', jsonOption(balloon));
  argv.push(...def.qemu.args);
  return { binary: ctx.binary, argv, env: { ...def.qemu.env } };
}
