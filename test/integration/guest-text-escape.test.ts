/**
 * Text from a guest is shown, not obeyed: file names, link targets and (on a terminal) file
 * contents read out of a guest image reach the host's terminal with their control characters
 * escaped (src/util/terminal-text.ts). A pipe still gets the file's bytes as they are. The
 * image is made by the real mke2fs from a tree with hostile names; the terminal is a real pty
 * (util-linux `script`).
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const CLI = join(resolve(import.meta.dirname, '../..'), 'bin', 'virtkit.js');
const Title = 'evil\x1b]0;owned\x07.txt';
const NoControls = /[\x00-\x08\x0b-\x1f\x7f]/;

let dir: string;
let image: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'virtkit-escape-'));
  const tree = join(dir, 'tree');
  await mkdir(tree);
  await writeFile(join(tree, Title), 'hello \x1b[2J\x1b]52;c;b3duZWQ=\x07 world\n');
  await writeFile(join(tree, 'line\nbreak'), 'x');
  await symlink('\x1b[31mred', join(tree, 'link'));
  image = join(dir, 'guest.raw');
  await run('mke2fs', ['-q', '-t', 'ext4', '-d', tree, image, '4M']);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function virtkit(...args: string[]): Promise<string> {
  return (await run(process.execPath, [CLI, ...args])).stdout;
}

/** The command's output as a terminal receives it (through a pty). */
async function onTerminal(...args: string[]): Promise<string> {
  const quoted = [process.execPath, CLI, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  return (await run('script', ['-qec', quoted, '/dev/null'])).stdout.replace(/\r\n/g, '\n');
}

describe('guest text on the host terminal', () => {
  it('fs ls, ls -l, find and stat escape the control characters of names and link targets', async () => {
    const ls = await virtkit('fs', 'ls', image, '/');
    // As ls shows such names on a terminal: $'…' quoting, one line each, pasteable into a shell.
    expect(ls).toContain("$'evil\\e]0;owned\\x07.txt'\n");
    expect(ls).toContain("$'line\\nbreak'\n");
    for (const out of [ls, await virtkit('fs', 'ls', '-l', image, '/'), await virtkit('fs', 'find', image, '/'),
      await virtkit('fs', 'stat', image, '/link')]) {
      expect(out).not.toMatch(NoControls);
    }
    expect(await virtkit('fs', 'stat', image, '/link')).toContain("-> $'\\e[31mred'");
  });

  it('fs cat shows a file\'s escape sequences on a terminal, passes its bytes to a pipe, and --raw passes them anyway', async () => {
    const shown = await onTerminal('fs', 'cat', image, `/${Title}`);
    expect(shown).toContain('hello \\e[2J\\e]52;c;b3duZWQ=\\x07 world\n');
    expect(shown).not.toMatch(NoControls);
    expect(await virtkit('fs', 'cat', image, `/${Title}`)).toBe('hello \x1b[2J\x1b]52;c;b3duZWQ=\x07 world\n');
    expect(await onTerminal('fs', 'cat', '--raw', image, `/${Title}`)).toContain('\x1b]52;c;b3duZWQ=\x07');
  });
});
