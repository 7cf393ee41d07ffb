import { KindGuard, type TSchema } from '@sinclair/typebox';
import { annotations } from './schema.js';

/**
 * The variant of a discriminated union (annotated with `x-discriminator`) a value meant: the one
 * whose discriminator literal it carries or, when it carries none, the variant whose
 * discriminator has a default. -1 when none matches; undefined when `schema` is not a
 * discriminated union.
 */
export function chosenVariant(schema: TSchema, value: unknown): number | undefined {
  const key = annotations(schema).discriminator;
  if (key === undefined || !KindGuard.IsUnion(schema)) return undefined;
  const given = value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[key] : undefined;
  return schema.anyOf.findIndex((variant) => {
    const tag = KindGuard.IsObject(variant) ? variant.properties[key] : undefined;
    if (tag === undefined || !KindGuard.IsLiteral(tag)) return false;
    return given === undefined ? annotations(tag).default !== undefined : tag.const === given;
  });
}
