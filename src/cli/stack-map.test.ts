import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';
import { sourceMappedStack } from './stack-map.js';

const work = mkdtempSync(join(tmpdir(), 'virtkit-stack-map-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/**
 * A CommonJS bundle with a linked map, as scripts/build-cli.mjs writes them, and the stack of
 * what it throws in a plain `node` (the test runner would map it itself).
 */
async function thrownStack(withMap: boolean): Promise<{ stack: string; bundle: string; source: string }> {
  const dir = join(work, withMap ? 'mapped' : 'plain');
  mkdirSync(dir, { recursive: true });
  const source = join(dir, 'boom.ts');
  writeFileSync(source, 'interface Unused { a: number }\n\nexport function boom(): never {\n  throw new Error("boom");\n}\n');
  const bundle = join(dir, 'boom.cjs');
  await build({ entryPoints: [source], bundle: true, format: 'cjs', platform: 'node', outfile: bundle, sourcemap: withMap ? 'linked' : false, sourcesContent: false, logLevel: 'silent' });
  const run = spawnSync(process.execPath, ['-e', `try { require(${JSON.stringify(bundle)}).boom(); } catch (err) { process.stdout.write(err.stack); }`], { encoding: 'utf8' });
  return { stack: run.stdout, bundle, source };
}

describe('sourceMappedStack', () => {
  it('rewrites a bundle frame to the source file, line and column', async () => {
    const { stack, bundle, source } = await thrownStack(true);
    expect(stack).toContain(bundle);
    const mapped = sourceMappedStack(stack);
    expect(mapped).toContain(`${source}:4:9`);
    expect(mapped).not.toContain(bundle);
    expect(mapped.split('\n')[0]).toBe('Error: boom');
  });

  it('leaves frames of files without a map, and text that is no frame, as they are', async () => {
    const { stack } = await thrownStack(false);
    expect(sourceMappedStack(stack)).toBe(stack);
    expect(sourceMappedStack('no frames here: /nonexistent/x.js:1:1')).toBe('no frames here: /nonexistent/x.js:1:1');
  });
});
