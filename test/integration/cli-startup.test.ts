/**
 * What a client command loads (docs/performance.md, "CLI start-up"): `virtkit list` and
 * `virtkit fs cat` compile one file of virtkit, their verb's bundle (dist/cli/, written by
 * scripts/build-cli.mjs), and nothing from node_modules; the bundles hold nothing of the
 * daemon (no fastify, SQLite, prom-client, TypeBox, ws, YAML); and `fs cat` of a raw ext4
 * image runs the ext reader's modules but never those of the ISO 9660 or FAT readers, nor the
 * qcow2/VMDK/VDI readers, nor the client.
 *
 * The evidence is V8's own coverage (NODE_V8_COVERAGE): the scripts a run compiled, and for
 * each module a bundle evaluates lazily (esbuild names its init function after the source
 * file), how often it ran. It asserts what is loaded, never how long it took.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, afterAll, describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');
const cli = join(root, 'bin', 'virtkit.js');
let work: string;

interface BundleMeta { verbs: string[]; file: string; inputs: string[] }
let bundles: Record<string, BundleMeta>;

beforeAll(() => {
  // The bundles as the current sources make them: a no-op when `npm run build` made them.
  const built = spawnSync(process.execPath, [join(root, 'scripts', 'build-cli.mjs')], { encoding: 'utf8' });
  if (built.status !== 0) throw new Error(`build-cli failed: ${built.stderr}`);
  bundles = (JSON.parse(readFileSync(join(root, 'dist', 'cli', 'meta.json'), 'utf8')) as { bundles: Record<string, BundleMeta> }).bundles;
  work = mkdtempSync(join(tmpdir(), 'virtkit-startup-'));
  const src = join(work, 'src');
  mkdirSync(join(src, 'etc'), { recursive: true });
  writeFileSync(join(src, 'etc', 'hostname'), 'startup\n');
  const made = spawnSync('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', src, join(work, 'disk.img'), '8M']);
  if (made.status !== 0) throw new Error(`mke2fs failed: ${made.stderr.toString()}`);
}, 60_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

interface Run {
  stdout: string;
  stderr: string;
  status: number | null;
  /** The files of this checkout that the run compiled, relative to it. */
  files: string[];
  /** Per lazily evaluated module of a bundle (its source path), how often its init ran. */
  modules: Map<string, number>;
}

interface Coverage { result: { url: string; functions: { functionName: string; ranges: { count: number }[] }[] }[] }

function runCli(name: string, args: string[]): Run {
  const dir = join(work, `coverage-${name}`);
  const r = spawnSync(process.execPath, [cli, ...args], {
    env: { ...process.env, NODE_V8_COVERAGE: dir, VIRTKIT_CONNECT: join(work, 'no-daemon.sock') },
    encoding: 'utf8',
  });
  const files = new Set<string>();
  const modules = new Map<string, number>();
  for (const name of readdirSync(dir)) {
    const coverage = JSON.parse(readFileSync(join(dir, name), 'utf8')) as Coverage;
    for (const script of coverage.result) {
      if (!script.url.startsWith('file:')) continue;
      const path = fileURLToPath(script.url);
      if (path.startsWith(`${root}/`)) files.add(path.slice(root.length + 1));
      for (const fn of script.functions) {
        if (/^src\/.*\.ts$/.test(fn.functionName)) modules.set(fn.functionName, (modules.get(fn.functionName) ?? 0) + (fn.ranges[0]?.count ?? 0));
      }
    }
  }
  return { stdout: r.stdout, stderr: r.stderr, status: r.status, files: [...files].sort(), modules };
}

const daemonSide = [/node_modules\/(fastify|@fastify|better-sqlite3|prom-client|@sinclair\/typebox|ws|yaml)\//, /^src\/(daemon|store|conf)\//];

function bundleOf(verb: string): BundleMeta {
  const found = Object.values(bundles).find((b) => b.verbs.includes(verb));
  if (found === undefined) throw new Error(`no bundle for ${verb}`);
  return found;
}

describe('CLI start-up', () => {
  it('virtkit list compiles its verb bundle and nothing else of virtkit or node_modules', () => {
    const run = runCli('list', ['list']);
    expect(run.stderr).toContain('connection.failed');
    expect(run.files).toEqual(['bin/virtkit.js', `dist/cli/${bundleOf('list').file}`]);
    const inputs = bundleOf('list').inputs;
    for (const bad of daemonSide) expect(inputs.filter((i) => bad.test(i)), String(bad)).toEqual([]);
    // Only the invoked verb's command module.
    expect(inputs.filter((i) => i.startsWith('src/cli/commands/'))).toEqual(['src/cli/commands/connect.ts', 'src/cli/commands/info.ts']);
  });

  it('virtkit fs cat of a raw ext4 image runs the ext reader and not the ISO, FAT, qcow2, VMDK or VDI readers, nor the client', () => {
    const run = runCli('cat', ['fs', 'cat', join(work, 'disk.img'), '/etc/hostname']);
    expect(run.stdout).toBe('startup\n');
    expect(run.status).toBe(0);
    expect(run.files).toEqual(['bin/virtkit.js', `dist/cli/${bundleOf('fs').file}`]);
    const inputs = bundleOf('fs').inputs;
    for (const bad of [...daemonSide, /^src\/qemu\//]) expect(inputs.filter((i) => bad.test(i)), String(bad)).toEqual([]);

    const ran = (path: string): number | undefined => run.modules.get(path);
    expect(ran('src/guestfs/fs/ext/ext-fs.ts')).toBeGreaterThan(0);
    // Each reader is in the bundle, evaluated only on demand, and this run never asked for it.
    for (const reader of ['src/guestfs/fs/iso9660/iso-fs.ts', 'src/guestfs/fs/fat/fat-fs.ts', 'src/storage/image/qcow2.ts', 'src/storage/image/vmdk.ts', 'src/storage/image/vdi.ts', 'src/client/index.ts']) {
      expect(ran(reader), reader).toBe(0);
    }
    // Of the ISO and FAT readers only the signature probes ran.
    const probes = new Set(['src/guestfs/fs/iso9660/descriptors.ts', 'src/guestfs/fs/fat/boot-sector.ts']);
    const otherReaders = [...run.modules].filter(([path, count]) => /^src\/guestfs\/fs\/(iso9660|fat)\//.test(path) && !probes.has(path) && count > 0);
    expect(otherReaders).toEqual([]);
  });

  it('--version runs from a bundle of its own; what needs the whole command tree runs unbundled, as it did', () => {
    const version = runCli('version', ['--version']);
    expect(version.stdout).toBe('0.1.0\n');
    expect(version.files).toEqual(['bin/virtkit.js', `dist/cli/${bundleOf('--version').file}`]);
    const unknown = runCli('unknown', ['lst']);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toBe('virtkit: unknown command "lst". Did you mean "list"? See "virtkit --help".\n');
    expect(unknown.files).toContain('dist/src/cli/main.js');
    const help = runCli('help', ['help', 'list']);
    expect(help.stdout).toContain('Usage: virtkit list');
    expect(help.files).toContain('dist/src/cli/main.js');
  });
});
