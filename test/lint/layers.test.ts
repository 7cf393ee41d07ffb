/**
 * The layer rule (eslint-rules/layers.js) on small sources placed at virtual paths of src/:
 * allowed imports pass, an upward import, a face bypass and a stray child_process are reported.
 */
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Linter } from 'eslint';
import { describe, expect, it } from 'vitest';
import layers from '../../eslint-rules/layers.js';

// Virtual files under the real checkout: flat config matches paths relative to the working directory.
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const linter = new Linter({ configType: 'flat' });
const config: Linter.Config[] = [{
  files: ['**/*.ts'],
  plugins: { virtkit: layers },
  languageOptions: { sourceType: 'module' as const },
  rules: { 'virtkit/layers': ['error', { srcDir: `${root}/src`, rootDir: root }] },
}];

function problems(file: string, code: string): string[] {
  return linter.verify(code, config, { filename: `${root}/${file}` }).map((m) => m.message);
}

describe('layer rule', () => {
  it('lets a layer import a lower layer through its face, and util directly', () => {
    expect(problems('src/daemon/manager.ts', "import { x } from '../qemu/index.js';\nimport { y } from '../util/errors.js';")).toEqual([]);
    expect(problems('src/guestfs/fs/ext/ext-fs.ts', "import { x } from '../../../storage/block/index.js';")).toEqual([]);
  });

  it('reports an import against the layer order', () => {
    const [message] = problems('src/qemu/driver/x.ts', "import { m } from '../../daemon/index.js';");
    expect(message).toMatch(/qemu\/ may not import daemon\//);
    expect(problems('src/client/index.ts', "import { s } from '../store/index.js';")[0]).toMatch(/client\/ may not import store\//);
  });

  it('reports an import that bypasses the other layer\'s face', () => {
    expect(problems('src/daemon/manager.ts', "import { p } from '../qemu/process.js';")[0]).toMatch(/through its face/);
    expect(problems('src/cli/commands/fs.ts', "export { w } from '../../guestfs/walk.js';")[0]).toMatch(/through its face/);
  });

  it('allows child_process only in the listed files, and leaves tests alone', () => {
    expect(problems('src/daemon/server.ts', "import { spawn } from 'node:child_process';")[0]).toMatch(/child_process is allowed only in/);
    expect(problems('src/storage/qemu-img.ts', "import { spawn } from 'node:child_process';")).toEqual([]);
    expect(problems('src/daemon/server.test.ts', "import { spawn } from 'node:child_process';\nimport { p } from '../qemu/process.js';")).toEqual([]);
  });
});
