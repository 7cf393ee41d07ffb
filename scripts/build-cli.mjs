#!/usr/bin/env node
/**
 * Bundles the CLI: one CommonJS file per entry of the command table (src/cli/main.ts), so a
 * run of `virtkit list` compiles one file instead of loading a module graph (Node 20's ESM
 * loader costs about a millisecond per file, and starting it at all about 5 ms:
 * docs/performance.md, "CLI start-up"). bin/virtkit.js runs a verb from its bundle and
 * everything else (no verb, help, completion, unknown verbs) from the unbundled build in
 * dist/src/, which `tsc` writes before this runs.
 *
 * Written to dist/cli/:
 *   <module>.cjs (+ .map)        a verb module with the shared runner (src/cli/run-verb.ts).
 *                                What the source imports with `await import()` (a filesystem or
 *                                image format reader) is in the file but only evaluated when a
 *                                run imports it
 *   <module>.cjs.cache           V8's code cache for it, made here by compiling and evaluating
 *                                the bundle; the bin hands it to V8, which then parses nothing
 *                                (a cache from another Node version is rejected and ignored)
 *   verbs.json                   verb -> bundle file, read by bin/virtkit.js; its mtime tells
 *                                the bin whether the bundles are as new as dist/src
 *   meta.json                    per bundle: its verbs, file and the sources in it
 *                                (test/integration/cli-startup.test.ts reads it), and the
 *                                modules left unbundled with the reason
 *
 * Left out of every bundle (imported from node_modules when a run needs them): native addons
 * and the big modules a client command never loads at start-up (ws, fastify, prom-client,
 * playwright). A module whose code finds files relative to itself (`import.meta.url`: the
 * daemon's web root and its native addon) cannot be moved into a bundle: a verb that reaches
 * one (the daemon) is not bundled and runs from dist/src.
 *
 * Nothing is rebuilt when the inputs (src/, package-lock.json, this script) have the digest of
 * the last build (dist/cli/.inputs); the bundles are then only marked as current. `--force`
 * always builds.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import Module, { isBuiltin } from 'node:module';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import vm from 'node:vm';
import { inputDigest } from './input-digest.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const outDir = join(root, 'dist', 'cli');
const stamp = join(outDir, '.inputs');
const verbsFile = 'verbs.json';
const inputs = ['src', 'package-lock.json', 'tsconfig.json', 'scripts/build-cli.mjs', 'scripts/input-digest.mjs'];

/** Packages a bundle imports from node_modules instead of containing. */
const external = ['better-sqlite3', 'fastify', '@fastify/*', 'ws', 'bufferutil', 'utf-8-validate', 'prom-client', 'playwright-core', 'esbuild', 'vite'];
const externalPackages = external.map((e) => new RegExp(`^${e.replace('*', '[^/]+')}(/|$)`));


/** The bundle bin/virtkit.js runs for `--version` or `-V` without a verb: it registers none. */
const VersionOnly = 'version-only';

/** The table's entries as { name, verbs }: `name` is the module file under src/cli/commands/. */
async function commandEntries() {
  const mainJs = join(root, 'dist', 'src', 'cli', 'main.js');
  if (!existsSync(mainJs)) throw new Error(`build-cli: ${relative(root, mainJs)} is missing: run tsc first (npm run build does)`);
  const { commandTable } = await import(pathToFileURL(mainJs).href);
  const entries = commandTable.filter((e) => e.needsAll !== true).map((e) => {
    // Each entry loads its module as `() => import('./commands/NAME.js')`.
    const m = /import\(\s*["']\.\/commands\/([\w-]+)\.js["']\s*\)/.exec(String(e.load));
    if (m === null) throw new Error(`build-cli: cannot tell which module the entry for ${e.verbs.join(', ')} loads: ${String(e.load)}`);
    return { name: m[1], verbs: [...e.verbs] };
  });
  if (entries.some((e) => e.name === VersionOnly)) throw new Error(`build-cli: a command module is named ${VersionOnly}, the name of the --version bundle`);
  // `virtkit --version` (no verb) is the program with no verb registered, as main.ts builds it.
  return [...entries, { name: VersionOnly, verbs: ['--version'] }];
}

/** The bundle's entry: the verb module's register() behind the shared runner. */
function entrySource(name) {
  return `export { exitQuietlyOnClosedPipe } from './closed-pipe.js';
import { runVerbModule } from './run-verb.js';
${name === VersionOnly ? 'const register = (): void => {};' : `import { register } from './commands/${name}.js';`}

export function main(argv: string[]): Promise<number> {
  return runVerbModule(argv, { register });
}
`;
}

const verbEntries = {
  name: 'virtkit-verb-entry',
  setup(build) {
    build.onResolve({ filter: /^virtkit-verb:/ }, (args) => ({ path: args.path.slice('virtkit-verb:'.length), namespace: 'virtkit-verb' }));
    build.onLoad({ filter: /.*/, namespace: 'virtkit-verb' }, (args) => ({
      contents: entrySource(args.path),
      resolveDir: join(root, 'src', 'cli'),
      loader: 'ts',
    }));
  },
};

/**
 * Commander requires node:child_process at load time, for executable subcommands (`git-foo`
 * style), which virtkit does not have; with it come net and dgram, a few milliseconds of
 * every start. Commander gets a stand-in that requires the real module on first use.
 */
const lazyChildProcessForCommander = {
  name: 'virtkit-lazy-child-process',
  setup(build) {
    build.onResolve({ filter: /^node:child_process$/ }, (args) =>
      (/[\\/]node_modules[\\/]commander[\\/]/.test(args.importer) ? { path: 'child_process', namespace: 'virtkit-lazy' } : undefined));
    build.onLoad({ filter: /.*/, namespace: 'virtkit-lazy' }, () => ({
      contents: "let real;\nmodule.exports = new Proxy({}, { get: (_, key) => (real ??= require('node:child_process'))[key] });\n",
      loader: 'js',
    }));
  },
};

/**
 * `await import()` of a module left outside the bundle (ws, node:zlib) becomes a require() of
 * it: the bundle is compiled through node:vm (with its code cache), where import() needs a
 * loader callback that Node 20 marks experimental (a warning on stderr) and that a script
 * restored from a code cache loses. The named exports come through as esbuild's ESM interop
 * gives them for any CommonJS module.
 */
const dynamicExternalsAsRequire = {
  name: 'virtkit-dynamic-externals',
  setup(build) {
    build.onResolve({ filter: /.*/ }, (args) => {
      if (args.kind !== 'dynamic-import' || args.namespace === 'virtkit-dynamic') return undefined;
      const external = args.path.startsWith('node:') || isBuiltin(args.path) || externalPackages.some((e) => e.test(args.path));
      return external ? { path: args.path, namespace: 'virtkit-dynamic' } : undefined;
    });
    build.onLoad({ filter: /.*/, namespace: 'virtkit-dynamic' }, (args) => ({
      contents: `module.exports = require(${JSON.stringify(args.path)});\n`,
      loader: 'js',
    }));
  },
};

/** A source that finds files relative to its own location, which a bundle would move. */
function locatesItself(input) {
  return input.startsWith('src/') && /\bimport\.meta\.(url|dirname|filename)\b/.test(readFileSync(join(root, input), 'utf8'));
}

/** Builds every bundle in one esbuild run (each source is parsed once); no code is shared between them. */
async function bundleAll(esbuild, dir, entries) {
  const result = await esbuild.build({
    entryPoints: entries.map((e) => ({ in: `virtkit-verb:${e.name}`, out: e.name })),
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    outdir: dir,
    outExtension: { '.js': '.cjs' },
    sourcemap: 'linked',
    sourcesContent: false,
    external,
    plugins: [verbEntries, lazyChildProcessForCommander, dynamicExternalsAsRequire],
    metafile: true,
    absWorkingDir: root,
    logLevel: 'warning',
    // A source using import.meta is found below and its verb left unbundled.
    logOverride: { 'empty-import-meta': 'silent' },
  });
  // The bin compiles bundles without an import() callback: none may be left.
  for (const [file, out] of Object.entries(result.metafile.outputs)) {
    const dynamic = out.imports.filter((i) => i.kind === 'dynamic-import' && i.external === true).map((i) => i.path);
    if (dynamic.length > 0) throw new Error(`build-cli: ${file} still imports ${dynamic.join(', ')} with import()`);
  }
  const byEntry = new Map(Object.values(result.metafile.outputs).filter((o) => o.entryPoint !== undefined).map((o) => [o.entryPoint, o]));
  return entries.map((entry) => {
    const output = byEntry.get(`virtkit-verb:${entry.name}`);
    const inputs = Object.keys(output.inputs).filter((i) => !i.startsWith('virtkit-verb:')).sort();
    return { ...entry, file: `${entry.name}.cjs`, bytes: output.bytes, inputs, unbundlable: inputs.filter(locatesItself) };
  });
}

/**
 * Compiles and evaluates each bundle the way bin/virtkit.js does and writes V8's code cache
 * beside it. Run in a child process (`--code-cache FILE...`): evaluating a bundle runs its
 * modules' top-level code, which has no business in the build's own process.
 */
function writeCodeCaches(bundleFiles) {
  for (const file of bundleFiles) {
    const script = new vm.Script(Module.wrap(readFileSync(file, 'utf8')), { filename: file });
    const module = { exports: {} };
    script.runInThisContext().call(module.exports, module.exports, Module.createRequire(file), module, file, dirname(file));
    // After evaluation, so the cache also holds the functions the top-level code ran.
    writeFileSync(`${file}.cache`, script.createCachedData());
  }
}

/** Puts the new tree in place of the old one; a run meanwhile finds no verbs.json and runs unbundled. */
function install(tmp) {
  const old = `${outDir}.old-${process.pid}`;
  if (existsSync(outDir)) renameSync(outDir, old);
  try {
    renameSync(tmp, outDir);
  } catch (err) {
    // Another build put its tree there first: it was made from the same kind of inputs; keep it.
    if (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err;
    rmSync(tmp, { recursive: true, force: true });
  }
  rmSync(old, { recursive: true, force: true });
}

if (process.argv[2] === '--code-cache') {
  writeCodeCaches(process.argv.slice(3));
  process.exit(0);
}

const digest = inputDigest(root, inputs);
const force = process.argv.includes('--force');
const mapPath = join(outDir, verbsFile);
if (!force && existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === digest && existsSync(mapPath)) {
  // tsc has just rewritten dist/src: mark the bundles as current so bin/virtkit.js uses them.
  const now = new Date();
  utimesSync(mapPath, now, now);
  process.exit(0);
}

const started = Date.now();
const esbuild = await import('esbuild');
const entries = await commandEntries();
const tmp = `${outDir}.new-${process.pid}`;
rmSync(tmp, { recursive: true, force: true });
mkdirSync(tmp, { recursive: true });
try {
  const built = await bundleAll(esbuild, tmp, entries);
  const verbs = {};
  const meta = { bundles: {}, unbundled: {} };
  for (const b of built) {
    if (b.unbundlable.length > 0) {
      meta.unbundled[b.name] = { verbs: b.verbs, reason: `locates files relative to itself: ${b.unbundlable.join(', ')}` };
      rmSync(join(tmp, b.file), { force: true });
      rmSync(join(tmp, `${b.file}.map`), { force: true });
      continue;
    }
    for (const v of b.verbs) verbs[v] = b.file;
    meta.bundles[b.name] = { verbs: b.verbs, file: b.file, bytes: b.bytes, inputs: b.inputs };
  }
  writeFileSync(join(tmp, 'meta.json'), `${JSON.stringify(meta, null, 1)}\n`);
  writeFileSync(join(tmp, '.inputs'), `${digest}\n`);
  // Written last: its mtime is the bundles' age for the bin.
  writeFileSync(join(tmp, verbsFile), `${JSON.stringify({ verbs })}\n`);
  install(tmp);
  // Made in place: V8 keeps the file name it compiled under in the cache, for stack traces.
  const bundleFiles = Object.values(meta.bundles).map((b) => join(outDir, b.file));
  const made = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--code-cache', ...bundleFiles], { stdio: 'inherit' });
  if (made.status !== 0) throw new Error(`build-cli: making the code caches failed (${made.status ?? made.signal})`);
  const bundled = Object.keys(meta.bundles).length;
  process.stdout.write(`${basename(import.meta.url)}: ${bundled} verb bundles in ${relative(root, outDir)}/ (${Object.keys(meta.unbundled).join(', ') || 'none'} left unbundled) in ${Date.now() - started} ms\n`);
} catch (err) {
  rmSync(tmp, { recursive: true, force: true });
  throw err;
}
