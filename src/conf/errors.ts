/**
 * Turns the first schema violation into the one message a person reads:
 * `disks[1].format: must be one of raw, qcow2, got "vmdk"`, with the dotted field path and a
 * rule name in the error's data.
 */
import { Kind, KindGuard, type TSchema } from '@sinclair/typebox';
import { ValueErrorType, type ValueError } from '@sinclair/typebox/errors';
import { VirtkitError } from '../util/errors.js';
import { SizeKind, sizeProblem, type SizeSchemaOptions } from './input-schema.js';
import { annotations } from './schema.js';
import { chosenVariant } from './variant.js';

export type PathSegment = string | number;

/** `disks[1].format`; keys that are not identifiers are quoted: `qemu.env["A B"]`. */
export function formatPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(segment)) out += out === '' ? segment : `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out === '' ? 'definition' : out;
}

/** A value as shown after "got": JSON, shortened. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

export function definitionError(path: readonly PathSegment[], rule: string, message: string, value?: unknown, showValue = true): VirtkitError {
  const where = formatPath(path);
  const text = showValue ? `${where}: ${message}, got ${describeValue(value)}` : `${where}: ${message}`;
  return new VirtkitError('definition.invalid', text, { path: where, rule });
}

/** JSON pointer from TypeBox (`/disks/1/format`) to segments, numbers for array indexes. */
function pointerSegments(pointer: string, root: unknown): PathSegment[] {
  if (pointer === '') return [];
  const segments: PathSegment[] = [];
  let node: unknown = root;
  for (const raw of pointer.slice(1).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(node) && /^(0|[1-9][0-9]*)$/.test(key)) {
      segments.push(Number(key));
      node = node[Number(key)];
    } else {
      segments.push(key);
      node = node !== null && typeof node === 'object' ? (node as Record<string, unknown>)[key] : undefined;
    }
  }
  return segments;
}

function literalValues(schema: TSchema): unknown[] | undefined {
  if (!KindGuard.IsUnion(schema)) return undefined;
  const values: unknown[] = [];
  for (const variant of schema.anyOf) {
    if (!KindGuard.IsLiteral(variant)) return undefined;
    values.push(variant.const);
  }
  return values;
}

function typeName(schema: TSchema): string {
  if (KindGuard.IsString(schema)) return 'a string';
  if (KindGuard.IsInteger(schema)) return 'an integer';
  if (KindGuard.IsNumber(schema)) return 'a number';
  if (KindGuard.IsBoolean(schema)) return 'true or false';
  if (KindGuard.IsArray(schema)) return 'a list';
  if (KindGuard.IsObject(schema) || KindGuard.IsRecord(schema)) return 'a mapping';
  if (KindGuard.IsLiteral(schema)) return JSON.stringify(schema.const);
  return 'something else';
}

/** Whether `value` has the JSON type `schema` asks for (whatever else it gets wrong). */
function hasTypeOf(schema: TSchema, value: unknown): boolean {
  if (KindGuard.IsString(schema)) return typeof value === 'string';
  if (KindGuard.IsInteger(schema) || KindGuard.IsNumber(schema)) return typeof value === 'number';
  if (KindGuard.IsBoolean(schema)) return typeof value === 'boolean';
  if (KindGuard.IsArray(schema)) return Array.isArray(value);
  if (KindGuard.IsObject(schema) || KindGuard.IsRecord(schema)) return value !== null && typeof value === 'object' && !Array.isArray(value);
  return false;
}

/** The VirtkitError for TypeBox's first error on `root`. */
export function schemaError(error: ValueError, root: unknown): VirtkitError {
  const path = pointerSegments(error.path, root);
  const { schema, value } = error;
  const a = annotations(schema);
  switch (error.type) {
    case ValueErrorType.ObjectRequiredProperty:
      return definitionError(path, 'required', 'is required', undefined, false);
    case ValueErrorType.ObjectAdditionalProperties:
      return a.keyRule !== undefined
        ? definitionError(path, 'key', a.keyRule, path[path.length - 1])
        : definitionError(path, 'unknown-field', 'is not a known field', undefined, false);
    case ValueErrorType.StringPattern:
      return definitionError(path, 'pattern', a.rule ?? `must match ${String(schema.pattern)}`, value);
    case ValueErrorType.StringMinLength:
      return definitionError(path, 'min-length', 'must not be empty', value);
    case ValueErrorType.StringMaxLength:
      return definitionError(path, 'max-length', `must be at most ${String(schema.maxLength)} characters`, value);
    case ValueErrorType.IntegerMinimum:
    case ValueErrorType.NumberMinimum:
      return definitionError(path, 'minimum', `must be at least ${String(schema.minimum)}`, value);
    case ValueErrorType.IntegerMaximum:
    case ValueErrorType.NumberMaximum:
      return definitionError(path, 'maximum', `must be at most ${String(schema.maximum)}`, value);
    case ValueErrorType.IntegerMultipleOf:
      return definitionError(path, 'multiple-of', `must be a multiple of ${String(schema.multipleOf)}`, value);
    case ValueErrorType.ArrayMaxItems:
      return definitionError(path, 'max-items', `must have at most ${String(schema.maxItems)} items`, `${(value as unknown[]).length} items`);
    case ValueErrorType.ObjectMaxProperties:
      return definitionError(path, 'max-items', `must have at most ${String(schema.maxProperties)} entries`, undefined, false);
    case ValueErrorType.Literal:
      return definitionError(path, 'enum', `must be ${JSON.stringify(schema.const)}`, value);
    case ValueErrorType.Kind:
      if (schema[Kind] === SizeKind) {
        return definitionError(path, 'size', sizeProblem(schema as SizeSchemaOptions, value) ?? 'must be a size', value);
      }
      break;
    case ValueErrorType.Union: {
      const literals = literalValues(schema);
      if (literals !== undefined) {
        return definitionError(path, 'enum', `must be one of ${literals.join(', ')}`, value);
      }
      const anyOf = (schema as TSchema & { anyOf: TSchema[] }).anyOf;
      const variant = chosenVariant(schema, value);
      if (variant !== undefined) {
        const key = annotations(schema).discriminator ?? '';
        const inner = variant >= 0 ? error.errors[variant]?.First() : undefined;
        if (inner !== undefined) return schemaError(inner, root);
        if (value === null || typeof value !== 'object' || Array.isArray(value)) {
          return definitionError(path, 'type', 'must be a mapping', value);
        }
        const tags = anyOf.map((v) => (KindGuard.IsObject(v) ? (v.properties[key] as { const?: unknown } | undefined)?.const : undefined));
        return definitionError([...path, key], 'enum', `must be one of ${tags.join(', ')}`, (value as Record<string, unknown>)[key]);
      }
      // A value of the right type for exactly one variant gets that variant's own message
      // (`must be at least 0` rather than `must be an integer or a string`).
      const sameType = anyOf.flatMap((v, i) => (hasTypeOf(v, value) ? [i] : []));
      const inner = sameType.length === 1 ? error.errors[sameType[0] ?? -1]?.First() : undefined;
      if (inner !== undefined) return schemaError(inner, root);
      return definitionError(path, 'type', `must be ${anyOf.map(typeName).join(' or ')}`, value);
    }
    default:
      break;
  }
  return definitionError(path, 'type', `must be ${typeName(schema)}`, value);
}
