#!/usr/bin/env node
/**
 * Builds the web manager (web/ -> dist/web/) unless nothing it is made from changed since the
 * last build: `npm run build` stays fast when only the daemon changed. The inputs are web/,
 * the source the page bundles (src/client, src/api, src/conf, src/util) and package-lock.json;
 * their digest is kept in dist/web/.inputs. `--force` always builds.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inputDigest } from '../scripts/input-digest.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const outDir = join(root, 'dist', 'web');
const stamp = join(outDir, '.inputs');
const inputs = ['web', 'src/client', 'src/api', 'src/conf', 'src/util', 'package-lock.json', 'scripts/input-digest.mjs'];

const digest = inputDigest(root, inputs);
const force = process.argv.includes('--force');
if (!force && existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === digest && existsSync(join(outDir, 'index.html'))) {
  process.exit(0);
}
const { build } = await import('vite');
await build({ configFile: join(root, 'web', 'vite.config.ts'), logLevel: 'warn' });
writeFileSync(stamp, `${digest}\n`);
