/**
 * scripts/setup runs `npm ci` only when package-lock.json changed since the last install (or
 * the installed native module does not load). Run against a copy of the script in a scratch
 * project, with `npm` and `dpkg-query` replaced by stand-ins that record what they were asked.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';

const root = mkdtempSync(join(tmpdir(), 'virtkit-setup-'));
const project = join(root, 'project');
const bin = join(root, 'bin');
const calls = join(root, 'npm-calls');
afterAll(() => rmSync(root, { recursive: true, force: true }));

mkdirSync(join(project, 'scripts'), { recursive: true });
copyFileSync(new URL('../scripts/setup', import.meta.url), join(project, 'scripts', 'setup'));
writeFileSync(join(project, 'package-lock.json'), '{"lockfileVersion": 3, "packages": {"node_modules/a": {"version": "1.0.0"}}}\n');
mkdirSync(bin);
// Every host package is installed; npm ci lays down a loadable stand-in for better-sqlite3.
writeFileSync(join(bin, 'dpkg-query'), '#!/bin/sh\nprintf "install ok installed"\n');
writeFileSync(join(bin, 'npm'), `#!/bin/sh
echo "$*" >> '${calls}'
if [ "$1" = ci ]; then
  rm -rf node_modules
  mkdir -p node_modules/better-sqlite3
  echo 'module.exports = class { close() {} };' > node_modules/better-sqlite3/index.js
fi
`);
for (const f of ['dpkg-query', 'npm']) chmodSync(join(bin, f), 0o755);

function setup(): string[] {
  rmSync(calls, { force: true });
  const r = spawnSync('sh', [join(project, 'scripts', 'setup')], {
    encoding: 'utf8', env: { ...process.env, PATH: `${bin}:${process.env['PATH'] ?? ''}` },
  });
  expect(r.status, r.stderr).toBe(0);
  return readFileSync(calls, 'utf8').trim().split('\n');
}

describe('scripts/setup', () => {
  test('installs on a fresh checkout, then skips npm ci while the lock and node_modules agree', () => {
    expect(setup()).toEqual(['ci --no-audit --no-fund', 'run build']);
    expect(setup()).toEqual(['run build']);
  });

  test('a changed lock installs again', () => {
    writeFileSync(join(project, 'package-lock.json'), '{"lockfileVersion": 3, "packages": {"node_modules/a": {"version": "1.0.1"}}}\n');
    expect(setup()).toEqual(['ci --no-audit --no-fund', 'run build']);
    expect(setup()).toEqual(['run build']);
  });

  test('a native module that does not load installs again', () => {
    writeFileSync(join(project, 'node_modules', 'better-sqlite3', 'index.js'), 'throw new Error("wrong ABI");\n');
    expect(setup()).toEqual(['ci --no-audit --no-fund', 'run build']);
  });

  test('node_modules removed by hand installs again', () => {
    rmSync(join(project, 'node_modules'), { recursive: true });
    expect(setup()).toEqual(['ci --no-audit --no-fund', 'run build']);
  });
});
