import { describe, expect, test } from 'vitest';
import { validateDefinition, type DomainDefinition } from '../../conf/index.js';
import { VirtkitError } from '../../util/errors.js';
import { exportLibvirtXml } from './export.js';
import { importLibvirtXml } from './import.js';

function definition(extra: Record<string, unknown>): DomainDefinition {
  return validateDefinition({ name: 'ctl', memory: '256MiB', accel: 'tcg', ...extra });
}

function refusal(def: DomainDefinition): VirtkitError {
  try {
    exportLibvirtXml(def);
  } catch (err) {
    if (err instanceof VirtkitError) return err;
    throw err;
  }
  throw new Error('exported without a refusal');
}

describe('libvirt export of text XML cannot carry', () => {
  test.each([
    ['description', { description: 'a\x1bb\x07c' }, 'description', 'U+001B'],
    ['qemu.args', { qemu: { args: ['-name', 'x\x07'] } }, 'qemu.args[1]', 'U+0007'],
    ['qemu.env values', { qemu: { env: { TERM: 'x\x1b[31m' } } }, 'qemu.env.TERM', 'U+001B'],
  ])('a control character in %s is refused naming the field', (_what, extra, path, char) => {
    const err = refusal(definition(extra));
    expect(err.code).toBe('definition.unsupported');
    expect(err.data['path']).toBe(path);
    expect(err.message).toContain(char);
    // The message reaches a terminal: no raw control character in it.
    expect(err.message).not.toMatch(/[\x00-\x08\x0b\x0c\x0e-\x1f]/);
  });

  test('tab, newline and CR are XML characters and round trip', () => {
    const xml = exportLibvirtXml(definition({ description: 'a\tb\nc', qemu: { args: ['-name', 'x\ty'] } }));
    expect(xml).not.toMatch(/[\x00-\x08\x0b\x0c\x0e-\x1f]/);
    const back = importLibvirtXml(xml).definition;
    expect(back['description']).toBe('a\tb\nc');
    expect((back['qemu'] as { args: string[] }).args).toEqual(['-name', 'x\ty']);
  });
});
