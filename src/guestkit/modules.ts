/**
 * Kernel modules for the guest: resolve the wanted names with their dependencies from
 * /lib/modules/<version>/modules.dep, in an order where every dependency loads first, and
 * tell apart the ones built into the kernel (modules.builtin), which need no file at all.
 *
 * Busybox's insmod loads plain ELF objects only, so compressed modules (.ko.gz, .ko.xz,
 * .ko.zst: distributions differ; Debian 12 ships plain .ko) are decompressed on the host.
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzip } from 'node:zlib';
import { promisify } from 'node:util';
import { VirtkitError, errorMessage } from '../util/errors.js';

const gunzipAsync = promisify(gunzip);

export interface KernelModule {
  /** Canonical name: file name without suffixes, dashes as underscores (`virtio_pci`). */
  name: string;
  /** Path relative to the version's module directory, as modules.dep gives it. */
  relPath: string;
}

export interface ResolvedModules {
  /** Modules to insmod, dependencies before their users. */
  load: KernelModule[];
  /** Wanted names the kernel already has built in. */
  builtin: string[];
}

interface DepEntry {
  relPath: string;
  deps: string[];
}

const COMPRESSION_SUFFIX = /\.(gz|xz|zst)$/;

/** `kernel/drivers/virtio/virtio-pci.ko.xz` -> `virtio_pci`: the name modprobe and the kernel use. */
export function moduleNameOf(relPath: string): string {
  const base = relPath.slice(relPath.lastIndexOf('/') + 1);
  return base.replace(COMPRESSION_SUFFIX, '').replace(/\.ko$/, '').replaceAll('-', '_');
}

/** Parses modules.dep (`path.ko: dep.ko dep2.ko`), keyed by canonical module name. */
export function parseModulesDep(text: string): Map<string, DepEntry> {
  const table = new Map<string, DepEntry>();
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    // depmod writes every line as `path: deps`; anything else carries no module.
    if (colon <= 0) continue;
    const relPath = line.slice(0, colon).trim();
    const deps = line.slice(colon + 1).trim().split(/\s+/).filter((d) => d !== '');
    table.set(moduleNameOf(relPath), { relPath, deps });
  }
  return table;
}

/** Parses modules.builtin (one `kernel/...ko` path per line) into canonical names. */
export function parseModulesBuiltin(text: string): Set<string> {
  return new Set(text.split('\n').map((l) => l.trim()).filter((l) => l !== '').map(moduleNameOf));
}

async function readHostText(path: string, hint: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new VirtkitError('guestkit.missing-host-file', `cannot read ${path}: ${errorMessage(err)} (${hint})`, { path });
  }
}

/**
 * Resolves `names` (dashes or underscores, as modprobe accepts) for the modules directory of
 * one kernel version, e.g. /lib/modules/6.1.0-26-amd64.
 */
export async function resolveModules(versionDir: string, names: readonly string[]): Promise<ResolvedModules> {
  const hint = 'install the linux-image package whose modules match the kernel';
  const deps = parseModulesDep(await readHostText(join(versionDir, 'modules.dep'), hint));
  const builtinNames = parseModulesBuiltin(await readHostText(join(versionDir, 'modules.builtin'), hint));
  const load: KernelModule[] = [];
  const builtin: string[] = [];
  const done = new Set<string>();
  const visiting = new Set<string>();

  const visit = (name: string, wantedBy: string | undefined): void => {
    if (done.has(name)) return;
    const entry = deps.get(name);
    if (entry === undefined) {
      if (builtinNames.has(name)) {
        builtin.push(name);
        done.add(name);
        return;
      }
      const what = wantedBy === undefined ? '' : ` (needed by ${wantedBy})`;
      throw new VirtkitError('guestkit.missing-host-file', `kernel module ${name}${what} is neither in ${versionDir}/modules.dep nor built in`, { module: name, versionDir });
    }
    // modules.dep is acyclic when depmod wrote it; a cycle means the file is not depmod's.
    if (visiting.has(name)) throw new VirtkitError('guestkit.missing-host-file', `${versionDir}/modules.dep has a dependency cycle through ${name}`, { module: name });
    visiting.add(name);
    for (const dep of entry.deps) visit(moduleNameOf(dep), name);
    visiting.delete(name);
    done.add(name);
    load.push({ name, relPath: entry.relPath });
  };

  for (const name of names) visit(name.replaceAll('-', '_'), undefined);
  return { load, builtin };
}

function decompressWith(tool: string, path: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // Bounded like every helper (docs/reliability.md): a module unpacks in well under a second.
    const child = spawn(tool, ['-d', '-c', path], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000, killSignal: 'SIGKILL' });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', (e) => {
      reject(new VirtkitError('guestkit.missing-host-file', `cannot run ${tool} to decompress ${path}: ${e.message} (install ${tool === 'xz' ? 'xz-utils' : tool})`, { path, tool }));
    });
    child.on('close', (code) => {
      if (code === 0) resolve(Buffer.concat(out));
      else reject(new VirtkitError('guestkit.missing-host-file', `${tool} could not decompress ${path}: ${Buffer.concat(err).toString().trim()}`, { path, tool }));
    });
  });
}

/** The module's ELF bytes, decompressed if the distribution ships it compressed. */
export async function readModule(versionDir: string, mod: KernelModule): Promise<Buffer> {
  const path = join(versionDir, mod.relPath);
  if (mod.relPath.endsWith('.xz')) return decompressWith('xz', path);
  if (mod.relPath.endsWith('.zst')) return decompressWith('zstd', path);
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw new VirtkitError('guestkit.missing-host-file', `cannot read kernel module ${path}: ${errorMessage(err)}`, { path });
  }
  return mod.relPath.endsWith('.gz') ? gunzipAsync(bytes) : bytes;
}
