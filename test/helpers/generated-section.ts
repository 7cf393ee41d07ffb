/**
 * A docs page carries a section rendered from the code (a table between begin/end comments):
 * this checks the page holds what the code renders now, or with `VIRTKIT_REGENERATE=1`
 * rewrites the section in place. `section` has three groups: the begin marker, the rendered
 * text, the end marker.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { expect } from 'vitest';

export function expectGeneratedSection(page: string, section: RegExp, rendered: string): void {
  const text = readFileSync(page, 'utf8');
  expect(text).toMatch(section);
  if (process.env['VIRTKIT_REGENERATE'] === '1') {
    writeFileSync(page, text.replace(section, (_all, begin: string, _old: string, end: string) => `${begin}${rendered}${end}`));
    return;
  }
  expect(section.exec(text)?.[2]).toBe(rendered);
}
