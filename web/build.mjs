#!/usr/bin/env node
/**
 * Builds the web manager (web/ -> dist/web/) unless nothing it is made from changed since the
 * last build: `npm run build` stays fast when only the daemon changed. The inputs are web/,
 * the source the page bundles (src/client, src/api, src/conf, src/util) and package-lock.json;
 * their digest is kept in dist/web/.inputs. `--force` always builds.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const outDir = join(root, 'dist', 'web');
const stamp = join(outDir, '.inputs');
const inputs = ['web', 'src/client', 'src/api', 'src/conf', 'src/util', 'package-lock.json'];

function* files(path) {
  const st = statSync(path);
  if (st.isFile()) { yield path; return; }
  for (const name of readdirSync(path).sort()) {
    if (name === 'node_modules' || name.endsWith('.test.ts')) continue;
    yield* files(join(path, name));
  }
}

const hash = createHash('sha256');
for (const input of inputs) {
  const path = join(root, input);
  if (!existsSync(path)) continue;
  for (const file of files(path)) hash.update(relative(root, file)).update('\0').update(readFileSync(file)).update('\0');
}
const digest = hash.digest('hex');
const force = process.argv.includes('--force');
if (!force && existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === digest && existsSync(join(outDir, 'index.html'))) {
  process.exit(0);
}
const { build } = await import('vite');
await build({ configFile: join(root, 'web', 'vite.config.ts'), logLevel: 'warn' });
writeFileSync(stamp, `${digest}\n`);
