#!/usr/bin/env node
/**
 * `virtkit`. A known verb, and `--version`, runs from its bundle (dist/cli/, written by
 * `npm run build` through scripts/build-cli.mjs): one CommonJS file, compiled from the V8 code
 * cache written beside it. Everything else runs from the unbundled build (dist/src/cli/main.js):
 * no verb, `help`, completion, an unknown verb, a verb left unbundled (the daemon), and every
 * verb when the bundles are missing or older than dist/src (`tsc` ran after the last
 * `npm run build`).
 *
 * This file is CommonJS (bin/package.json) and so is the bundle: Node then never starts its
 * ESM loader for a bundled verb, which alone costs about 5 ms. It runs before every command,
 * so it makes a few system calls and no more.
 */
'use strict';
const { readFileSync, statSync } = require('node:fs');
const { dirname, join } = require('node:path');

const dist = join(__dirname, '..', 'dist');
const argv = process.argv.slice(2);

/**
 * The bundle of the verb `words` names (the first word that is not an option; `--version`
 * when there is none and it asks for the version), if there is a current one.
 */
function bundleFor(words) {
  const verb = words.find((a) => !a.startsWith('-')) ?? (words.some((a) => a === '-V' || a === '--version') ? '--version' : undefined);
  if (verb === undefined) return undefined;
  try {
    const table = join(dist, 'cli', 'verbs.json');
    if (statSync(table).mtimeMs < statSync(join(dist, 'src', 'cli', 'main.js')).mtimeMs) return undefined;
    const { verbs } = JSON.parse(readFileSync(table, 'utf8'));
    const file = Object.hasOwn(verbs, verb) ? verbs[verb] : undefined;
    if (typeof file !== 'string') return undefined;
    const path = join(dist, 'cli', file);
    // Read here, so a build replacing dist/cli meanwhile means the unbundled run, not a crash.
    return { path, source: readFileSync(path, 'utf8') };
  } catch {
    return undefined;
  }
}

/**
 * Loads a bundle as require() would, but hands V8 the code cache beside it (the bundles use no
 * import(), which a script compiled this way could not run). Under --enable-source-maps it is
 * plain require(), so Node maps every stack trace; otherwise the internal-error path maps its
 * own (src/cli/stack-map.ts).
 */
function loadBundle({ path: file, source }) {
  if (process.sourceMapsEnabled === true) return require(file);
  const vm = require('node:vm');
  const Module = require('node:module');
  let cachedData;
  try {
    cachedData = readFileSync(`${file}.cache`);
  } catch {
    // No cache: V8 compiles the source.
  }
  const script = new vm.Script(Module.wrap(source), { filename: file, cachedData });
  const module = { exports: {} };
  script.runInThisContext().call(module.exports, module.exports, Module.createRequire(file), module, file, dirname(file));
  return module.exports;
}

async function unbundled() {
  const [{ main }, { exitQuietlyOnClosedPipe }] = await Promise.all([import('../dist/src/cli/main.js'), import('../dist/src/cli/closed-pipe.js')]);
  return { main, exitQuietlyOnClosedPipe };
}

const bundle = bundleFor(argv);
(bundle === undefined ? unbundled() : Promise.resolve(loadBundle(bundle)))
  .then(({ main, exitQuietlyOnClosedPipe }) => {
    exitQuietlyOnClosedPipe();
    return main(argv);
  })
  .then((code) => { process.exitCode = code; });
