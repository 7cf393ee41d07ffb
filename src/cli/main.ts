#!/usr/bin/env node
/**
 * The `virtkit` command. Each verb lives in its own file under commands/ and registers itself
 * on the program; this file only wires them and turns typed errors into messages and exit codes.
 *
 * Command modules are loaded lazily: a run of `virtkit fs cat ...` imports the guest
 * filesystem readers and nothing of the manager, the HTTP server or the definition schema.
 * Start-up time is part of every command's latency (and of `virtkit run`'s boot time), so
 * only help and shell completion, which need the whole tree, load every module.
 *
 * `npm run build` also bundles each entry of the table into one file (dist/cli/, written by
 * scripts/build-cli.mjs from this table), and bin/virtkit.js runs a known verb from its
 * bundle; this file is what runs the rest (no verb, `help`, completion, unknown verbs, the
 * daemon) and any verb whose bundle is missing or older than this build.
 */
import type { Command } from 'commander';
import { ExitCodes } from './exit-codes.js';
import { newProgram, runCli, type CommandModule } from './run-verb.js';
import { nearestWord } from './suggest.js';

/**
 * What a positional argument completes to in the shell (`virtkit completion bash`):
 * a defined domain's or a pool's name (asked of the manager), a host path, an image file or
 * a guest's name (`fs`, `inspect`, `bootinfo`), one of a few words, or nothing.
 */
export type ArgCompletion = 'domain' | 'pool' | 'file' | 'target' | 'none' | { readonly words: readonly string[] };

/**
 * One entry per positional argument, in order; the last one repeats for a variadic argument.
 * A verb with subcommands (`img`, `fs`) lists them, each with its own arguments.
 */
export type VerbArgs = readonly ArgCompletion[] | { readonly subcommands: Readonly<Record<string, readonly ArgCompletion[]>> };

export interface CommandEntry {
  /** The top-level verbs the module registers (checked by main.test.ts). */
  readonly verbs: readonly string[];
  /** Per verb, what its positional arguments complete to (checked against the command tree by completion.test.ts). */
  readonly args: Readonly<Record<string, VerbArgs>>;
  readonly load: () => Promise<CommandModule>;
  /** The command inspects the whole program (completion), so every module is loaded. */
  readonly needsAll?: boolean;
}

// command registrations (one entry per module, keep sorted by file name)
export const commandTable: readonly CommandEntry[] = [
  { verbs: ['argv'], args: { argv: ['file'] }, load: () => import('./commands/argv.js') },
  { verbs: ['autostart'], args: { autostart: ['domain'] }, load: () => import('./commands/autostart.js') },
  { verbs: ['bootinfo'], args: { bootinfo: ['target'] }, load: () => import('./commands/bootinfo.js') },
  { verbs: ['capabilities'], args: { capabilities: [] }, load: () => import('./commands/capabilities.js') },
  { verbs: ['completion'], args: { completion: [{ words: ['bash'] }] }, load: () => import('./commands/completion.js'), needsAll: true },
  { verbs: ['console'], args: { console: ['domain'] }, load: () => import('./commands/console.js') },
  { verbs: ['convert', 'dumpxml'], args: { convert: ['file'], dumpxml: ['domain'] }, load: () => import('./commands/convert.js') },
  { verbs: ['create'], args: { create: [] }, load: () => import('./commands/create.js') },
  { verbs: ['daemon'], args: { daemon: [] }, load: () => import('./commands/daemon.js') },
  { verbs: ['define', 'undefine'], args: { define: ['file'], undefine: ['domain'] }, load: () => import('./commands/define.js') },
  { verbs: ['dump', 'dump-info'], args: { dump: ['domain', 'file'], 'dump-info': ['file'] }, load: () => import('./commands/dump.js') },
  { verbs: ['dumpdef', 'edit'], args: { dumpdef: ['domain'], edit: ['domain'] }, load: () => import('./commands/definition.js') },
  { verbs: ['domcapabilities'], args: { domcapabilities: [] }, load: () => import('./commands/domcapabilities.js') },
  { verbs: ['domstats'], args: { domstats: ['domain'] }, load: () => import('./commands/domstats.js') },
  {
    verbs: ['attach-disk', 'detach-disk', 'attach-interface', 'detach-interface', 'domblklist', 'domiflist', 'setmem', 'setmaxmem', 'dommemstat', 'setvcpus', 'vcpuinfo'],
    args: {
      'attach-disk': ['domain', 'file', 'none'], 'detach-disk': ['domain', 'none'], 'attach-interface': ['domain'], 'detach-interface': ['domain', 'none'],
      domblklist: ['domain'], domiflist: ['domain'], setmem: ['domain', 'none'], setmaxmem: ['domain', 'none'], dommemstat: ['domain'],
      setvcpus: ['domain', 'none'], vcpuinfo: ['domain'],
    },
    load: () => import('./commands/devices.js'),
  },
  { verbs: ['event'], args: { event: [] }, load: () => import('./commands/event.js') },
  {
    verbs: ['fs'],
    args: {
      fs: {
        subcommands: {
          ls: ['target', 'none'], cat: ['target', 'none'], get: ['target', 'none', 'file'], stat: ['target', 'none'], find: ['target', 'none', 'none'],
        },
      },
    },
    load: () => import('./commands/fs.js'),
  },
  { verbs: ['guestkit'], args: { guestkit: ['file'] }, load: () => import('./commands/guestkit.js') },
  { verbs: ['host-shutdown'], args: { 'host-shutdown': [] }, load: () => import('./commands/host-shutdown.js') },
  {
    verbs: ['img'],
    args: {
      img: {
        subcommands: {
          info: ['file'], map: ['file'], create: ['file', 'none'], convert: ['file', 'file'], check: ['file'], resize: ['file', 'none'], compare: ['file', 'file'],
        },
      },
    },
    load: () => import('./commands/img.js'),
  },
  { verbs: ['list', 'dominfo', 'domstate'], args: { list: [], dominfo: ['domain'], domstate: ['domain'] }, load: () => import('./commands/info.js') },
  { verbs: ['inspect'], args: { inspect: ['target'] }, load: () => import('./commands/inspect.js') },
  {
    verbs: ['start', 'shutdown', 'destroy', 'reboot', 'reset', 'suspend', 'resume'],
    args: { start: ['domain'], shutdown: ['domain'], destroy: ['domain'], reboot: ['domain'], reset: ['domain'], suspend: ['domain'], resume: ['domain'] },
    load: () => import('./commands/lifecycle.js'),
  },
  { verbs: ['qemu-monitor-command'], args: { 'qemu-monitor-command': ['domain', 'none'] }, load: () => import('./commands/monitor.js') },
  { verbs: ['nbd'], args: { nbd: ['file'] }, load: () => import('./commands/nbd.js') },
  { verbs: ['netdump'], args: { netdump: ['domain', 'file'] }, load: () => import('./commands/netdump.js') },
  {
    verbs: ['net-define', 'net-start', 'net-destroy', 'net-undefine', 'net-list', 'net-info', 'net-autostart', 'net-dhcp-leases', 'net-dumpdef', 'domifaddr'],
    args: { 'net-define': ['file'], 'net-start': ['none'], 'net-destroy': ['none'], 'net-undefine': ['none'], 'net-list': [], 'net-info': ['none'], 'net-autostart': ['none'], 'net-dhcp-leases': ['none'], 'net-dumpdef': ['none'], domifaddr: ['domain'] },
    load: () => import('./commands/net.js'),
  },
  {
    verbs: ['pool-define-as', 'pool-list', 'pool-info', 'pool-refresh', 'pool-undefine'],
    args: { 'pool-define-as': ['none', { words: ['dir'] }, 'file'], 'pool-list': [], 'pool-info': ['pool'], 'pool-refresh': ['pool'], 'pool-undefine': ['pool'] },
    load: () => import('./commands/pool.js'),
  },
  { verbs: ['probe'], args: { probe: [] }, load: () => import('./commands/probe.js') },
  { verbs: ['schedinfo', 'memtune'], args: { schedinfo: ['domain'], memtune: ['domain'] }, load: () => import('./commands/resources.js') },
  { verbs: ['run'], args: { run: ['file'] }, load: () => import('./commands/run.js') },
  {
    verbs: ['save', 'restore', 'managedsave', 'managedsave-remove'],
    args: { save: ['domain', 'file'], restore: ['file'], managedsave: ['domain'], 'managedsave-remove': ['domain'] },
    load: () => import('./commands/save.js'),
  },
  {
    verbs: ['vncdisplay', 'screenshot', 'send-key'],
    args: { vncdisplay: ['domain'], screenshot: ['domain', 'file'], 'send-key': ['domain', 'none'] },
    load: () => import('./commands/screens.js'),
  },
  {
    verbs: ['snapshot-create', 'snapshot-list', 'snapshot-info', 'snapshot-revert', 'snapshot-delete'],
    args: { 'snapshot-create': ['domain', 'none'], 'snapshot-list': ['domain'], 'snapshot-info': ['domain', 'none'], 'snapshot-revert': ['domain', 'none'], 'snapshot-delete': ['domain', 'none'] },
    load: () => import('./commands/snapshot.js'),
  },
  { verbs: ['snoop'], args: { snoop: [] }, load: () => import('./commands/snoop.js') },
  { verbs: ['trace'], args: { trace: ['domain', 'none'] }, load: () => import('./commands/trace.js') },
  { verbs: ['ui'], args: { ui: [] }, load: () => import('./commands/ui.js') },
  {
    verbs: ['vol-create-as', 'vol-list', 'vol-info', 'vol-clone', 'vol-resize', 'vol-delete', 'vol-upload', 'vol-download'],
    // POOL VOLUME [...]: volume names are free text (they need the pool first).
    args: {
      'vol-create-as': ['pool', 'none', 'none'], 'vol-list': ['pool'], 'vol-info': ['pool', 'none'], 'vol-clone': ['pool', 'none', 'none'],
      'vol-resize': ['pool', 'none', 'none'], 'vol-delete': ['pool', 'none'], 'vol-upload': ['pool', 'none', 'file'], 'vol-download': ['pool', 'none', 'file'],
    },
    load: () => import('./commands/vol.js'),
  },
];

/** The first word that is not an option: the verb commander will dispatch on. */
function verbOf(argv: readonly string[]): string | undefined {
  return argv.find((a) => !a.startsWith('-'));
}

/** Every verb the table knows, plus commander's own `help`. */
export function knownVerbs(): string[] {
  return [...commandTable.flatMap((e) => e.verbs), 'help'];
}

/** The one-line answer to an unknown verb (the whole help would bury it). */
export function unknownVerbMessage(word: string): string {
  const guess = nearestWord(word, knownVerbs());
  return `virtkit: unknown command "${word}".${guess === undefined ? '' : ` Did you mean "${guess}"?`} See "virtkit --help".\n`;
}

/**
 * The program with the modules `argv` needs: only the verb's own module when the verb is
 * known, every module otherwise (no verb, `help`).
 */
export async function buildProgram(argv: readonly string[] = []): Promise<Command> {
  const program = newProgram();
  const verb = verbOf(argv);
  const entry = verb === undefined ? undefined : commandTable.find((e) => e.verbs.includes(verb));
  const versionOnly = verb === undefined && argv.some((a) => a === '-V' || a === '--version');
  const entries = versionOnly ? [] : entry !== undefined && entry.needsAll !== true ? [entry] : commandTable;
  const modules = await Promise.all(entries.map((e) => e.load()));
  for (const m of modules) m.register(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const verb = verbOf(argv);
  if (verb !== undefined && !knownVerbs().includes(verb)) {
    process.stderr.write(unknownVerbMessage(verb));
    return ExitCodes.usage;
  }
  return runCli(argv, () => buildProgram(argv));
}
