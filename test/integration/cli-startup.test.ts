/**
 * What a client command loads: `virtkit list` and `virtkit fs cat` import their own verb's
 * module and nothing of the daemon (no fastify, SQLite, prom-client), nor the TypeBox
 * schemas, nor ws (docs/performance.md, CLI start-up). A module resolve hook records every
 * module the built CLI resolves; it asserts what is loaded, never how long it took.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const cli = resolve('bin/virtkit.js');
let work: string;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'virtkit-startup-'));
  writeFileSync(join(work, 'hooks.mjs'), `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  appendFileSync(process.env.VIRTKIT_MODULE_LOG, r.url + '\\n');
  return r;
}
`);
  writeFileSync(join(work, 'register.mjs'), `import { register } from 'node:module';
register(${JSON.stringify(pathToFileURL(join(work, 'hooks.mjs')).href)});
`);
  const src = join(work, 'src');
  spawnSync('mkdir', ['-p', join(src, 'etc')]);
  writeFileSync(join(src, 'etc', 'hostname'), 'startup\n');
  const made = spawnSync('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', src, join(work, 'disk.img'), '8M']);
  if (made.status !== 0) throw new Error(`mke2fs failed: ${made.stderr.toString()}`);
});

afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The modules (file URLs, node: builtins) the CLI resolved running `args`, and its stdout. */
function modulesOf(args: string[]): { modules: string[]; stdout: string } {
  const log = join(work, `modules-${args[0]}.log`);
  writeFileSync(log, '');
  const r = spawnSync(process.execPath, ['--import', join(work, 'register.mjs'), cli, ...args], {
    env: { ...process.env, VIRTKIT_MODULE_LOG: log, VIRTKIT_CONNECT: join(work, 'no-daemon.sock') },
    encoding: 'utf8',
  });
  return { modules: [...new Set(readFileSync(log, 'utf8').split('\n').filter(Boolean))], stdout: r.stdout };
}

const daemonSide = ['fastify', 'better-sqlite3', 'prom-client', '@sinclair/typebox', '/ws/', 'yaml', '/dist/src/daemon/', '/dist/src/store/', '/dist/src/conf/'];

describe('CLI start-up', () => {
  it('virtkit list loads its verb, the client and commander only', () => {
    const { modules } = modulesOf(['list']);
    expect(modules.some((m) => m.endsWith('/dist/src/cli/commands/info.js'))).toBe(true);
    for (const bad of daemonSide) expect(modules.filter((m) => m.includes(bad)), bad).toEqual([]);
    // Only the invoked verb's command module.
    expect(modules.filter((m) => m.includes('/dist/src/cli/commands/') && !/\/(info|connect)\.js$/.test(m))).toEqual([]);
  });

  it('virtkit fs cat loads the filesystem readers and none of the daemon or the client', () => {
    const { modules, stdout } = modulesOf(['fs', 'cat', join(work, 'disk.img'), '/etc/hostname']);
    expect(stdout).toBe('startup\n');
    for (const bad of [...daemonSide, '/dist/src/client/', '/dist/src/qemu/']) expect(modules.filter((m) => m.includes(bad)), bad).toEqual([]);
  });
});
