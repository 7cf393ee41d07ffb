#!/usr/bin/env node
/**
 * Builds the native addon (build/Release/peer_cred.node) with node-gyp, the way better-sqlite3
 * is built, against the headers of the Node that runs this script: node-gyp would otherwise
 * download them, and hosts reach no network but the package registries.
 *
 *   node native/build.mjs             rebuild (the package's install script)
 *   node native/build.mjs --if-stale  only when the addon is missing or older than its sources
 */
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const addon = join(root, 'build', 'Release', 'peer_cred.node');
const sources = [join(root, 'native', 'peer_cred.c'), join(root, 'binding.gyp')];

function stale() {
  if (!existsSync(addon)) return true;
  const built = statSync(addon).mtimeMs;
  return sources.some((s) => statSync(s).mtimeMs > built);
}

/** The headers of this Node: an explicit nodedir wins, else the install prefix when it has them. */
function nodeDir() {
  const configured = process.env.npm_config_nodedir;
  if (configured) return configured;
  const prefix = dirname(dirname(process.execPath));
  return existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? prefix : undefined;
}

/** node-gyp as npm runs it (npm ships one and names it), else the one on PATH. */
function nodeGyp() {
  const bundled = process.env.npm_config_node_gyp;
  if (bundled && existsSync(bundled)) return [process.execPath, bundled];
  const besideNpm = join(dirname(dirname(process.execPath)), 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  if (existsSync(besideNpm)) return [process.execPath, besideNpm];
  return ['node-gyp'];
}

if (process.argv.includes('--if-stale') && !stale()) process.exit(0);
const dir = nodeDir();
const [command, ...prefixArgs] = nodeGyp();
const args = [...prefixArgs, 'rebuild', '--release', ...(dir ? [`--nodedir=${dir}`] : [])];
const result = spawnSync(command, args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
if (result.error) {
  process.stderr.write(`native/build.mjs: cannot run node-gyp: ${result.error.message}\n`);
  process.exit(1);
}
process.exit(result.status ?? 1);
