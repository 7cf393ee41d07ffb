import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../main.js';
import { bashCompletion } from './completion.js';

const script = bashCompletion(await buildProgram());

describe('bash completion', () => {

  it('knows the manager verbs, their options, and which verbs take a domain name', () => {
    for (const verb of ['define', 'start', 'shutdown', 'list', 'dominfo', 'console', 'snoop', 'host-shutdown', 'qemu-monitor-command']) {
      expect(script).toContain(verb);
    }
    expect(script).toMatch(/shutdown\) opts="[^"]*--timeout/);
    const domainVerbs = /\n {4}([a-z|-]+)\)\n\s+if \[ "\$COMP_CWORD" -eq 2 \]/.exec(script)?.[1]?.split('|') ?? [];
    expect(domainVerbs).toEqual(expect.arrayContaining(['start', 'dominfo', 'console', 'undefine']));
    expect(domainVerbs).not.toContain('list');
  });

  it('is valid bash that completes verbs', () => {
    const r = spawnSync('bash', ['-c', `${script}\nCOMP_WORDS=(virtkit domi); COMP_CWORD=1; _virtkit; echo "\${COMPREPLY[@]}"`], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe('dominfo');
  });
});
