/**
 * The browser entry must load in a page: nothing it imports, directly or not, may use Node's
 * modules or globals. Walks its relative imports from the source.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));

function importGraph(entry: string): Map<string, string> {
  const files = new Map<string, string>();
  const visit = (file: string): void => {
    if (files.has(file)) return;
    const text = readFileSync(file, 'utf8');
    files.set(file, text);
    for (const m of text.matchAll(/^(?:import|export)\s[^;]*?from\s+'([^']+)'/gms)) {
      const spec = m[1]!;
      if (spec.startsWith('.')) visit(resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
    }
  };
  visit(entry);
  return files;
}

describe('the browser entry', () => {
  const graph = importGraph(join(here, 'browser.ts'));

  it('shares the protocol and the method wrappers with the Node entry', () => {
    const names = [...graph.keys()].map((f) => f.slice(here.length - 'client'.length));
    expect(names).toEqual(expect.arrayContaining(['client/protocol.ts', 'client/api-client.ts', 'client/events.ts', 'api/methods.ts']));
    expect(names).not.toContain('client/index.ts');
    expect(names).not.toContain('client/transport.ts');
  });

  it('imports no node: module, no Node-only package, and uses no Buffer or process', () => {
    for (const [file, text] of graph) {
      const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
      const codeOnly = code.replace(/'(?:[^'\\\n]|\\.)*'/g, "''");
      const imports = [...code.matchAll(/from\s+'([^']+)'/g)].map((m) => m[1]!);
      expect(imports.filter((s) => !s.startsWith('.') && s !== '@sinclair/typebox'), file).toEqual([]);
      expect(codeOnly, file).not.toMatch(/\bBuffer\b|\bprocess\.|\brequire\(/);
    }
  });
});
