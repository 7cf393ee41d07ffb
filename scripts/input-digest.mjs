/**
 * The digest of a build's inputs (files and directories under the repository root, walked in
 * a stable order; node_modules and tests left out), which the builds keep beside their output
 * so that `npm run build` skips a step whose inputs have not changed.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

function* files(path) {
  const st = statSync(path);
  if (st.isFile()) { yield path; return; }
  for (const name of readdirSync(path).sort()) {
    if (name === 'node_modules' || name.endsWith('.test.ts')) continue;
    yield* files(join(path, name));
  }
}

/** sha256 over each input file's path (relative to `root`) and content; missing inputs are skipped. */
export function inputDigest(root, inputs) {
  const hash = createHash('sha256');
  for (const input of inputs) {
    const path = join(root, input);
    if (!existsSync(path)) continue;
    for (const file of files(path)) hash.update(relative(root, file)).update('\0').update(readFileSync(file)).update('\0');
  }
  return hash.digest('hex');
}
