/**
 * The input form of a definition, derived from the normalized schema so that there is only one
 * place where fields are declared: fields with a `default` or a `generated` value become
 * optional, and `x-input-size` fields accept a size string (`256MiB`) as well as bytes.
 */
import { Kind, KindGuard, Type, TypeRegistry, type TSchema } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { annotations, DomainDefinitionSchema } from './schema.js';
import { trySize } from './size.js';

export const SizeKind = 'VirtkitSize';

/** A size as written by a user: a string with a unit, or a number of bytes. */
export interface SizeSchemaOptions {
  minimum?: number;
  maximum?: number;
  multipleOf?: number;
}

/** Why a size value is not acceptable, or undefined when it is. */
export function sizeProblem(schema: SizeSchemaOptions, value: unknown): string | undefined {
  if (typeof value !== 'string' && typeof value !== 'number') return 'must be a size such as 256MiB or 1GiB';
  const bytes = trySize(value);
  if (bytes === undefined) return 'must be a size such as 256MiB or 1GiB';
  if (schema.minimum !== undefined && bytes < schema.minimum) {
    const hint = typeof value === 'number' ? ' (a plain number means bytes: write 256MiB)' : '';
    return `must be at least ${formatBinary(schema.minimum)}${hint}`;
  }
  if (schema.maximum !== undefined && bytes > schema.maximum) return `must be at most ${formatBinary(schema.maximum)}`;
  if (schema.multipleOf !== undefined && bytes % schema.multipleOf !== 0) return `must be a whole number of ${formatBinary(schema.multipleOf)}`;
  return undefined;
}

function formatBinary(bytes: number): string {
  for (const [unit, factor] of [['TiB', 1024 ** 4], ['GiB', 1024 ** 3], ['MiB', 1024 ** 2], ['KiB', 1024]] as const) {
    if (bytes >= factor && bytes % factor === 0) return `${bytes / factor}${unit}`;
  }
  return `${bytes}B`;
}

if (!TypeRegistry.Has(SizeKind)) {
  TypeRegistry.Set<SizeSchemaOptions>(SizeKind, (schema, value) => sizeProblem(schema, value) === undefined);
}

function optionalInInput(schema: TSchema): boolean {
  const a = annotations(schema);
  return a.default !== undefined || a.generated !== undefined;
}

/** The schema a user's document is checked against, derived from a normalized schema. */
export function toInputSchema(schema: TSchema): TSchema {
  const a = annotations(schema);
  if (a.inputSize === true) {
    const { minimum, maximum, multipleOf, description } = schema as SizeSchemaOptions & { description?: string };
    return Type.Unsafe<string | number>({ [Kind]: SizeKind, minimum, maximum, multipleOf, description });
  }
  if (KindGuard.IsObject(schema)) {
    const { properties, required: _required, type: _type, ...options } = schema;
    const inputProperties: Record<string, TSchema> = {};
    for (const [key, property] of Object.entries(properties)) {
      const derived = toInputSchema(property);
      inputProperties[key] = optionalInInput(property) || _required?.includes(key) !== true ? Type.Optional(derived) : derived;
    }
    return Type.Object(inputProperties, options);
  }
  if (KindGuard.IsUnion(schema)) {
    const { anyOf, ...options } = schema;
    return Type.Union(anyOf.map(toInputSchema), options);
  }
  if (KindGuard.IsArray(schema)) {
    const { items, type: _type, ...options } = schema;
    return Type.Array(toInputSchema(items), options);
  }
  return schema;
}

export const DomainDefinitionInputSchema = toInputSchema(DomainDefinitionSchema);

let compiledInput: TypeCheck<TSchema> | undefined;
let compiledNormalized: TypeCheck<typeof DomainDefinitionSchema> | undefined;

/** Compiled checkers, built on first use (compiling costs a few milliseconds). */
export function inputChecker(): TypeCheck<TSchema> {
  compiledInput ??= TypeCompiler.Compile(DomainDefinitionInputSchema);
  return compiledInput;
}

export function normalizedChecker(): TypeCheck<typeof DomainDefinitionSchema> {
  compiledNormalized ??= TypeCompiler.Compile(DomainDefinitionSchema);
  return compiledNormalized;
}
