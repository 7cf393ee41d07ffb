import { readdir } from 'node:fs/promises';
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram, commandTable } from './main.js';

describe('the lazy command table', () => {
  it('lists exactly the verbs each module registers', async () => {
    for (const entry of commandTable) {
      const program = new Command();
      (await entry.load()).register(program);
      expect(program.commands.map((c) => c.name()).sort()).toEqual([...entry.verbs].sort());
    }
  });

  it('names every command module in commands/', async () => {
    const files = (await readdir(new URL('./commands/', import.meta.url)))
      .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'));
    const modules: string[] = [];
    for (const f of files) {
      const mod = (await import(`./commands/${f.replace(/\.ts$/, '.js')}`)) as { register?: unknown };
      // manager-verbs groups the manager's verbs for library users; connect holds shared options.
      if (typeof mod.register === 'function' && f !== 'manager-verbs.ts') modules.push(f);
    }
    const program = await buildProgram();
    const registered = new Set(program.commands.map((c) => c.name()));
    for (const f of modules) {
      const p = new Command();
      ((await import(`./commands/${f.replace(/\.ts$/, '.js')}`)) as { register(p: Command): void }).register(p);
      for (const c of p.commands) expect(registered, `${f} registers ${c.name()}`).toContain(c.name());
    }
  });

  it('loads only the verb\'s module for a known verb, and everything for help', async () => {
    expect((await buildProgram(['fs', 'ls', 'x', '/'])).commands.map((c) => c.name())).toEqual(['fs']);
    expect((await buildProgram(['--help'])).commands.length).toBe(commandTable.flatMap((e) => e.verbs).length);
    expect((await buildProgram(['completion', 'bash'])).commands.length).toBe(commandTable.flatMap((e) => e.verbs).length);
  });
});
