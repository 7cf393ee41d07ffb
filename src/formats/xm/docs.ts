/** The key-by-key table of docs/xm.md, rendered from the reader's own table so the page cannot drift. */
import { XmKeys } from './mapping.js';

function cell(text: string): string {
  return text.replace(/\|/g, '\\|');
}

export function renderXmKeyTable(): string {
  const rows = Object.entries(XmKeys).map(([key, rule]) =>
    `| \`${key}\` | ${rule.field === '-' ? '—' : rule.field.split(', ').map((f) => `\`${f}\``).join(', ')} | ${cell(rule.how)} |`);
  return ['| xm/xl key | Definition field | How |', '| --- | --- | --- |', ...rows].join('\n');
}
