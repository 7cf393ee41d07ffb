import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dieWithParent, findExecutable } from './helper-process.js';

let dir: string;
beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'virtkit-helper-')); });
afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

function exitOf(child: ReturnType<typeof spawn>): Promise<number | null> {
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

describe('dieWithParent', () => {
  it('runs the helper itself under the spawned pid (setpriv and the guard exec it)', async () => {
    const sleepBin = findExecutable('sleep')!;
    const helper = dieWithParent(sleepBin, ['30']);
    expect(helper.args.slice(0, 3)).toEqual(['--pdeathsig', 'KILL', '--']);
    const child = spawn(helper.file, helper.args, { stdio: 'ignore' });
    const exited = exitOf(child);
    let argv: string[] = [];
    for (let i = 0; i < 100 && argv[0] !== sleepBin; i++) {
      argv = (await readFile(`/proc/${child.pid}/cmdline`, 'utf8')).split('\0');
      await sleep(20);
    }
    child.kill('SIGKILL');
    await exited;
    expect(argv.slice(0, 2)).toEqual([sleepBin, '30']);
  });

  it('does not run the helper when its parent is not the expected one (the parent died before the signal was armed)', async () => {
    const marker = join(dir, 'ran');
    // pid 1 is never our parent: the guard sees what it would see after our death and stops.
    const helper = dieWithParent(findExecutable('touch')!, [marker], 1);
    const child = spawn(helper.file, helper.args, { stdio: 'ignore' });
    expect(await exitOf(child)).toBe(125);
    expect(existsSync(marker)).toBe(false);
  });

  it('runs it when the parent is the expected one', async () => {
    const marker = join(dir, 'ran-here');
    const helper = dieWithParent(findExecutable('touch')!, [marker]);
    expect(await exitOf(spawn(helper.file, helper.args, { stdio: 'ignore' }))).toBe(0);
    expect(existsSync(marker)).toBe(true);
  });
});

describe('findExecutable', () => {
  it('searches PATH for a bare name and takes a path as it is', () => {
    expect(findExecutable('sh')).toMatch(/^\/.*\/sh$/);
    expect(findExecutable('/nonexistent/qemu-img')).toBeUndefined();
    expect(findExecutable('virtkit-no-such-program')).toBeUndefined();
    expect(findExecutable(tmpdir())).toBeUndefined(); // a directory is not a program
  });
});
