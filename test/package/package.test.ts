/**
 * The npm package as users get it: `npm pack` of the built tree, unpacked into a fresh
 * node_modules, then `import('virtkit')`, `import('virtkit/client')` and `import('virtkit/observability')` from outside the
 * repository. Catches `exports` entries that name files the package does not ship.
 * Dependencies are linked from this checkout's node_modules (no registry access needed).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

interface PackageJson {
  exports: Record<string, string | Record<string, string>>;
  bin: Record<string, string>;
}

describe('the packed npm package', () => {
  let work: string;
  let packed: string[];
  let pkg: PackageJson;

  beforeAll(async () => {
    if (!existsSync(join(root, 'dist', 'src', 'cli', 'main.js'))) throw new Error('build first: npm run build');
    pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as PackageJson;
    work = await mkdtemp(join(tmpdir(), 'virtkit-pack-'));
    const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', work], { cwd: root, maxBuffer: 64 << 20 });
    const [info] = JSON.parse(stdout) as { filename: string; files: { path: string }[] }[];
    packed = info!.files.map((f) => f.path);
    const modules = join(work, 'node_modules');
    await mkdir(join(modules, 'virtkit'), { recursive: true });
    await run('tar', ['-xzf', join(work, info!.filename), '-C', join(modules, 'virtkit'), '--strip-components=1']);
    for (const dep of await readdir(join(root, 'node_modules'))) {
      if (dep === '.bin' || dep === 'virtkit' || dep.startsWith('.')) continue;
      await symlink(join(root, 'node_modules', dep), join(modules, dep));
    }
  }, 120_000);

  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('ships every file its exports and bin entries name', () => {
    const targets = Object.values(pkg.exports).flatMap((t) => (typeof t === 'string' ? [t] : Object.values(t)));
    for (const target of [...targets, ...Object.values(pkg.bin)]) {
      expect(packed, `${target} is named in package.json but not in the package`).toContain(target.replace(/^\.\//, ''));
    }
  });

  it('imports as virtkit, virtkit/client and virtkit/client/browser from outside the repository', async () => {
    const script = `
      const main = await import('virtkit');
      const client = await import('virtkit/client');
      const browser = await import('virtkit/client/browser');
      console.log(JSON.stringify({ main: Object.keys(main), client: Object.keys(client), browser: Object.keys(browser),
        valid: main.validateDefinition({ name: 'p', memory: '64MiB' }).name }));`;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: work });
    const out = JSON.parse(stdout) as { main: string[]; client: string[]; browser: string[]; valid: string };
    expect(out.main).toEqual(expect.arrayContaining(['connect', 'validateDefinition', 'parseDefinition', 'VirtkitError', 'ErrorCodes']));
    expect(out.client).toEqual(expect.arrayContaining(['connect', 'VirtkitClient', 'VirtkitError']));
    expect(out.browser).toEqual(expect.arrayContaining(['BrowserClient']));
    expect(out.valid).toBe('p');
  });

  it('imports the trace analyzers as virtkit/observability', async () => {
    const script = `
      const obs = await import('virtkit/observability');
      class Count extends obs.Analyzer { n = 0; virtqueue_pop() { this.n++; } }
      const a = new Count();
      await obs.runAnalyzer(a, [{ event: 'virtqueue_pop', time: '2026-01-01T00:00:00.000Z', args: {} }]);
      console.log(JSON.stringify({ keys: Object.keys(obs), n: a.n }));`;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: work });
    const out = JSON.parse(stdout) as { keys: string[]; n: number };
    expect(out.keys).toEqual(expect.arrayContaining(['Analyzer', 'runAnalyzer', 'readTraceFile', 'parseRecordLine']));
    expect(out.n).toBe(1);
  });

  it('runs its command from the package', async () => {
    const { stdout } = await run(process.execPath, [join(work, 'node_modules', 'virtkit', pkg.bin['virtkit']!), '--version'], { cwd: work });
    expect(stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });
});
