/**
 * What the RPC channel checks and writes for each method, compiled once per method with the
 * very compilers fastify used for the routes (the same ajv instance and options:
 * `useDefaults`, `coerceTypes: 'array'`, no removal of extra fields; fast-json-stringify for the
 * result), so that a call answers the same over a route and over the channel: the same
 * defaults applied, the same `request.invalid` with the field path, the same result fields.
 */
import type { MethodName, MethodSpec } from '../api/index.js';

/** A call's input as a route sees it after parsing: its path parameters, query and body. */
export interface CallInput {
  params: Record<string, unknown>;
  query: Record<string, unknown>;
  body: unknown;
}

interface AjvLikeValidate {
  (data: unknown, ctx?: { parentData: object; parentDataProperty: string }): boolean;
  errors?: unknown[] | null;
  schemaEnv?: unknown;
}

export type ValidatorCompiler = (route: { schema: unknown; method: string; url: string; httpPart: string }) => AjvLikeValidate;
export type SerializerCompiler = (route: { schema: unknown; method: string; url: string; httpStatus: string }) => (data: unknown) => string;

/** The error fastify raises for a part that fails its schema; the daemon's `errorReply` turns it into `request.invalid`. */
export class ValidationFailure extends Error {
  readonly statusCode = 400;
  constructor(readonly validation: unknown[], readonly validationContext: 'params' | 'body' | 'querystring') {
    super(`${validationContext} is invalid`);
  }
}

export interface MethodCodec {
  /** Validates the input in place as the route does (defaults, coercion); throws ValidationFailure. */
  check(input: CallInput): void;
  /** The result as the route's serializer writes it. */
  serialize(result: unknown): string;
}

type Part = { holder: 'params' | 'body' | 'query'; context: 'params' | 'body' | 'querystring'; validate: AjvLikeValidate };

export class MethodCodecs {
  private readonly codecs = new Map<MethodName, MethodCodec>();

  constructor(
    private readonly specs: Readonly<Record<MethodName, MethodSpec>>,
    private readonly compileValidator: () => ValidatorCompiler,
    private readonly compileSerializer: () => SerializerCompiler,
  ) {}

  /** The codec of a method of the table; undefined for a name the table does not have. */
  of(method: string): MethodCodec | undefined {
    const known = this.codecs.get(method as MethodName);
    if (known) return known;
    if (!Object.hasOwn(this.specs, method)) return undefined;
    const codec = this.build(method as MethodName, this.specs[method as MethodName]);
    this.codecs.set(method as MethodName, codec);
    return codec;
  }

  private build(method: MethodName, spec: MethodSpec): MethodCodec {
    const route = { method: spec.http, url: spec.path };
    const validator = this.compileValidator();
    // The order of fastify's own checks: params, body, querystring.
    const parts: Part[] = [];
    if (spec.params) parts.push({ holder: 'params', context: 'params', validate: validator({ schema: spec.params, ...route, httpPart: 'params' }) });
    if (spec.body) parts.push({ holder: 'body', context: 'body', validate: validator({ schema: spec.body, ...route, httpPart: 'body' }) });
    if (spec.query) parts.push({ holder: 'query', context: 'querystring', validate: validator({ schema: spec.query, ...route, httpPart: 'querystring' }) });
    const status = String(spec.status ?? 200);
    const serialize = this.compileSerializer()({ schema: spec.result, ...route, httpStatus: status });
    // An empty POST or PUT body is an empty object, as the routes' preValidation hook makes it.
    const emptyBody = spec.http === 'POST' || spec.http === 'PUT';
    return {
      check(input) {
        if (input.body === undefined && emptyBody) input.body = {};
        for (const part of parts) {
          const value = input[part.holder] ?? null;
          // As fastify calls it: ajv may replace the root value (coercion) through its parent.
          const ok = part.validate.schemaEnv
            ? part.validate(value, { parentData: input, parentDataProperty: part.holder })
            : part.validate(value);
          if (!ok) throw new ValidationFailure(part.validate.errors ?? [], part.context);
        }
      },
      serialize,
    };
  }
}

/** The names of the table, for lookups that must not reach Object's prototype. */
export function isMethodName(specs: Readonly<Record<string, unknown>>, name: string): name is MethodName {
  return Object.hasOwn(specs, name);
}
