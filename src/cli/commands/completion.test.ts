import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { afterAll, describe, expect, it } from 'vitest';
import { buildProgram, commandTable, type VerbArgs } from '../main.js';
import { bashCompletion } from './completion.js';

const program = await buildProgram();
const script = bashCompletion(program);

// A stand-in `virtkit` on PATH answers the name queries the script makes.
const dir = mkdtempSync(join(tmpdir(), 'virtkit-completion-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
writeFileSync(join(dir, 'virtkit'), `#!/bin/sh
case "$*" in
  *"-c /other.sock"*) echo elsewhere ;;
  "list --all --name") printf 'demo\\nweb1\\n' ;;
  "pool-list --all --name") printf 'images\\nisos\\n' ;;
esac
`);
chmodSync(join(dir, 'virtkit'), 0o755);
writeFileSync(join(dir, 'disk.qcow2'), '');

/** What bash offers for the words typed so far (the last one is being completed). */
function complete(...words: string[]): string[] {
  const quoted = words.map((w) => `'${w}'`).join(' ');
  const r = spawnSync('bash', ['-c', `${script}\nCOMP_WORDS=(virtkit ${quoted}); COMP_CWORD=${words.length}; _virtkit; printf '%s\\n' "\${COMPREPLY[@]}"`],
    { encoding: 'utf8', cwd: dir, env: { ...process.env, PATH: `${dir}:${process.env['PATH'] ?? ''}` } });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.split('\n').filter((l) => l !== '').sort();
}

/** Declared entries must match the command's arguments; a variadic one may be spelled out further. */
function expectArgsMatch(declared: readonly unknown[], cmd: Command, label: string): void {
  const registered = (cmd as unknown as { registeredArguments: { variadic: boolean }[] }).registeredArguments;
  if (registered.at(-1)?.variadic === true) expect(declared.length, label).toBeGreaterThanOrEqual(registered.length);
  else expect(declared.length, label).toBe(registered.length);
}

describe('bash completion', () => {
  it('every verb and subcommand says what its positional arguments complete to', () => {
    const declared = new Map<string, VerbArgs>(commandTable.flatMap((e) => Object.entries(e.args)));
    for (const cmd of program.commands) {
      const args = declared.get(cmd.name());
      expect(args, cmd.name()).toBeDefined();
      if (cmd.commands.length > 0) {
        const subs = (args as { subcommands: Record<string, unknown[]> }).subcommands;
        expect(Object.keys(subs).sort(), cmd.name()).toEqual(cmd.commands.map((c) => c.name()).sort());
        for (const sub of cmd.commands) expectArgsMatch(subs[sub.name()]!, sub, `${cmd.name()} ${sub.name()}`);
      } else {
        expectArgsMatch(args as unknown[], cmd, cmd.name());
      }
    }
    expect(declared.size).toBe(program.commands.length);
  });

  it('completes verbs, and options after a dash', () => {
    expect(complete('domi')).toEqual(['domifaddr', 'domiflist', 'dominfo']);
    expect(complete('shutdown', '--t')).toEqual(['--timeout']);
  });

  it('offers domain names where a domain is meant, and only there', () => {
    expect(complete('start', '')).toEqual(['demo', 'web1']);
    expect(complete('console', 'w')).toEqual(['web1']);
    expect(complete('shutdown', '--timeout', '5', '')).toEqual(['demo', 'web1']);
    expect(complete('start', 'demo', '')).toEqual([]);
    expect(complete('list', '')).toEqual([]);
  });

  it('asks the daemon named by -c', () => {
    expect(complete('start', '-c', '/other.sock', '')).toEqual(['elsewhere']);
  });

  it('pool verbs offer pool names, pool-define-as its type and a directory', () => {
    expect(complete('pool-define-as', '')).toEqual([]);
    expect(complete('pool-define-as', 'images', '')).toEqual(['dir']);
    expect(complete('pool-define-as', 'images', 'dir', 'di')).toEqual(['disk.qcow2']);
    expect(complete('pool-info', '')).toEqual(['images', 'isos']);
    expect(complete('pool-undefine', 'i')).toEqual(['images', 'isos']);
    expect(complete('vol-list', '')).toEqual(['images', 'isos']);
    expect(complete('vol-upload', 'images', 'a.qcow2', 'di')).toEqual(['disk.qcow2']);
  });

  it('img and fs complete their subcommands, then files (and guests for fs targets)', () => {
    expect(complete('img', '')).toEqual(['check', 'compare', 'convert', 'create', 'info', 'map', 'resize']);
    expect(complete('img', 'c')).toEqual(['check', 'compare', 'convert', 'create']);
    expect(complete('img', 'info', 'di')).toEqual(['disk.qcow2']);
    expect(complete('img', 'info', '--f')).toEqual(['--format']);
    expect(complete('fs', '')).toEqual(['cat', 'find', 'get', 'ls', 'stat']);
    expect(complete('fs', 'ls', '')).toEqual(expect.arrayContaining(['demo', 'disk.qcow2', 'web1']));
    expect(complete('fs', 'ls', 'demo', '')).toEqual([]);
    expect(complete('inspect', 'd')).toEqual(['demo', 'disk.qcow2']);
  });

  it('completion itself offers the shells', () => {
    expect(complete('completion', '')).toEqual(['bash']);
  });
});
