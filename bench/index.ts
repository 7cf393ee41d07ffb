/**
 * `npm run bench`: runs every `*.bench.js` module in this folder (or those named on the command
 * line), each printing its figures as ratios against the reference tool measured in the same run.
 */
import { readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const only = process.argv.slice(2);
const files = (await readdir(here)).filter((f) => f.endsWith('.bench.js')).sort()
  .filter((f) => only.length === 0 || only.some((o) => f.startsWith(o)));
for (const f of files) {
  console.log(`\n== ${f.replace(/\.bench\.js$/, '')} ==`);
  const mod = (await import(join(here, f))) as { run: () => Promise<void> };
  await mod.run();
}
