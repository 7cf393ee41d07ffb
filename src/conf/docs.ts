/**
 * The field reference of docs/definition.md, rendered from the schema so the page cannot drift
 * from what validation accepts (a test compares the two).
 */
import { KindGuard, type TSchema } from '@sinclair/typebox';
import { annotations, DomainDefinitionSchema } from './schema.js';
import { formatSize } from './size.js';

export interface FieldDoc {
  path: string;
  type: string;
  required: string;
  description: string;
}

function typeOf(schema: TSchema): string {
  const a = annotations(schema);
  if (a.inputSize === true) return 'size';
  if (KindGuard.IsLiteral(schema)) return `\`${String(schema.const)}\``;
  if (KindGuard.IsUnion(schema)) {
    if (schema.anyOf.every((v) => KindGuard.IsLiteral(v))) return schema.anyOf.map((v) => `\`${String(v.const)}\``).join(' \\| ');
    if (a.discriminator !== undefined) return 'mapping';
    return schema.anyOf.map(typeOf).join(' \\| ');
  }
  if (KindGuard.IsArray(schema)) return `list of ${typeOf(schema.items)}`;
  if (KindGuard.IsRecord(schema)) return 'map of string';
  if (KindGuard.IsObject(schema)) return 'mapping';
  if (KindGuard.IsInteger(schema)) return 'integer';
  if (KindGuard.IsBoolean(schema)) return 'boolean';
  if (KindGuard.IsString(schema)) return 'string';
  return 'value';
}

function requirement(schema: TSchema, required: boolean): string {
  const a = annotations(schema);
  if (a.generated !== undefined) return `generated: ${a.generated}`;
  if (a.default !== undefined) {
    const text = a.inputSize === true && typeof a.default === 'number' ? formatSize(a.default) : JSON.stringify(a.default);
    return `default \`${text}\``;
  }
  return required ? 'required' : 'optional';
}

function walk(schema: TSchema, path: string, required: boolean, out: FieldDoc[], note = ''): void {
  const a = annotations(schema);
  const description = `${note}${(a.description ?? '').replace(/\|/g, '\\|')}`;
  if (path !== '' && !path.endsWith('[]')) out.push({ path, type: typeOf(schema), required: requirement(schema, required), description });
  if (KindGuard.IsObject(schema)) {
    for (const [key, property] of Object.entries(schema.properties)) {
      walk(property, path === '' ? key : `${path}.${key}`, schema.required?.includes(key) === true, out);
    }
  } else if (KindGuard.IsArray(schema) && KindGuard.IsObject(schema.items)) {
    walk(schema.items, `${path}[]`, true, out);
  } else if (KindGuard.IsUnion(schema) && a.discriminator !== undefined) {
    const key = a.discriminator;
    for (const variant of schema.anyOf) {
      if (!KindGuard.IsObject(variant)) continue;
      const tag = variant.properties[key];
      const tagValue = tag !== undefined && KindGuard.IsLiteral(tag) ? String(tag.const) : '?';
      for (const [field, property] of Object.entries(variant.properties)) {
        const note = field === key ? '' : `(${key} ${tagValue}) `;
        const fieldPath = field === key ? `${path}.${key}: ${tagValue}` : `${path}.${field}`;
        walk(property, fieldPath, variant.required?.includes(field) === true, out, note);
      }
    }
  }
}

/** One row per field, nested fields in dotted form (`disks[].format`). */
export function definitionFields(schema: TSchema = DomainDefinitionSchema): FieldDoc[] {
  const out: FieldDoc[] = [];
  walk(schema, '', true, out);
  return out;
}

/** The Markdown table for docs/definition.md. */
export function renderFieldTable(schema: TSchema = DomainDefinitionSchema): string {
  const rows = definitionFields(schema).map((f) => `| \`${f.path}\` | ${f.type} | ${f.required} | ${f.description} |`);
  return ['| Field | Type | Presence | Meaning |', '| --- | --- | --- | --- |', ...rows].join('\n');
}
