import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { isVirtkitError, VirtkitError } from '../util/errors.js';
import { loadDefinition, parseDefinition, readDefinitionFile } from './index.js';

function errorOf(text: string, format: 'yaml' | 'json' = 'yaml'): VirtkitError {
  try {
    parseDefinition(text, { format });
  } catch (err) {
    if (err instanceof VirtkitError) return err;
    throw err;
  }
  throw new Error(`accepted: ${text}`);
}

describe('syntax errors say where', () => {
  test.each([
    ['name: a\nname: b\nmemory: 64M', 2, 1, 'invalid YAML: Map keys must be unique'],
    ['name: a\nmemory: 64M\ndisks: [\n', 4, 1, 'invalid YAML: '],
    ['name: a\nmemory: 64M\n  vcpus: 2\n', 2, 9, 'invalid YAML: '],
    ['name: a\nmemory: 64M\nnics:\n  - {model: virtio,\n    mac: "x\n', 6, 1, 'invalid YAML: Missing closing "quote'],
  ])('YAML %j: line %i, column %i', (text, line, column, detail) => {
    const err = errorOf(text);
    expect(err.code).toBe('definition.invalid');
    expect(err.message.startsWith(`line ${line}, column ${column}: ${detail}`), err.message).toBe(true);
    expect(err.data).toMatchObject({ path: 'definition', rule: 'syntax', line, column });
  });

  test.each([
    ['{"name": "a",\n  "memory": 64M\n}', 2, 15],
    ['{"name": "a",\n x}', 2, 2],
    ['{"name": ', 1, 10],
  ])('JSON %j: line %i, column %i', (text, line, column) => {
    const err = errorOf(text, 'json');
    expect(err.code).toBe('definition.invalid');
    expect(err.message).toMatch(new RegExp(`^line ${line}, column ${column}: invalid JSON: `));
    expect(err.data).toMatchObject({ path: 'definition', rule: 'syntax', line, column });
  });

  test('a field error still names the field, not a position', () => {
    const err = errorOf('name: a\nmemory: 64M\nvcpus: 0\n');
    expect(err.message).toMatch(/^vcpus: /);
    expect(err.data['line']).toBeUndefined();
  });
});

describe('definition files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'virtkit-parse-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('a missing file or a directory is definition.not-found, wherever it is read', async () => {
    for (const path of [join(dir, 'missing.yaml'), dir]) {
      await expect(readDefinitionFile(path)).rejects.toSatisfy((e: unknown) => isVirtkitError(e, 'definition.not-found'));
      await expect(loadDefinition(path)).rejects.toSatisfy((e: unknown) => isVirtkitError(e, 'definition.not-found'));
    }
  });

  test('the format comes from the name, paths are relative to the file', async () => {
    const file = join(dir, 'g.json');
    writeFileSync(file, '{"name": "g", "memory": "64M"}');
    expect(await readDefinitionFile(file)).toEqual({ text: '{"name": "g", "memory": "64M"}', format: 'json', baseDir: dir });
  });
});
