/**
 * fastify's schema compilers, compiling each route's validators and serializer at its first
 * call instead of when the routes are registered. Fastify compiles every route at start-up:
 * ajv validators for each method's params, query and body and a fast-json-stringify serializer
 * for its result, about 8 MiB of an idle daemon's memory for routes that most daemons never
 * serve (the CLI calls over the RPC channel, which compiles a method at its first call too).
 * ajv and fast-json-stringify themselves are loaded at the first compilation.
 *
 * The compilers are fastify's own defaults (@fastify/ajv-compiler, @fastify/fast-json-stringify-
 * compiler, resolved from fastify's own location so they are the very versions it would use), given
 * the same ajv and serializer options: what a route accepts, the defaults and coercions applied,
 * the `request.invalid` envelopes and the fields a result keeps are unchanged. A schema that does
 * not compile fails at its route's first call; `lazy-compilers.test.ts` compiles every method's.
 */
import type { FastifyServerOptions } from 'fastify';
import { createRequire } from 'node:module';

type CompilersFactory = NonNullable<NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']>;
type ValidatorBuilder = NonNullable<CompilersFactory['buildValidator']>;
type SerializerBuilder = NonNullable<CompilersFactory['buildSerializer']>;

/** An ajv validate function as fastify calls it: with the parent when `schemaEnv` is set, then `errors`. */
interface Validate {
  (data: unknown, parent?: unknown): unknown;
  errors?: unknown;
  schemaEnv?: unknown;
}

type RouteCompiler<R> = (route: R) => Validate;
type SerializerCompiler<R> = (route: R) => (data: unknown) => string;

const fromFastify = (() => {
  let req: NodeJS.Require | undefined;
  return (name: string): unknown => {
    req ??= createRequire(createRequire(import.meta.url).resolve('fastify'));
    return req(name);
  };
})();

/** One route part's validator, compiled when it first validates. */
function lazyValidator<R>(compile: () => RouteCompiler<R>, route: R): Validate {
  let real: Validate | undefined;
  const validate: Validate = (data, parent) => {
    real ??= compile()(route);
    const ok = real(data, parent);
    validate.errors = real.errors;
    return ok;
  };
  // ajv's functions all have it: fastify then passes the parent, so a coerced root value is written back.
  validate.schemaEnv = true;
  return validate;
}

/** `schemaController.compilersFactory` for `Fastify({...})`. */
export function lazySchemaCompilers(): CompilersFactory {
  const buildValidator = ((externalSchemas: unknown, ajvOptions: unknown) => {
    let compiler: RouteCompiler<unknown> | undefined;
    const compile = (): RouteCompiler<unknown> => compiler ??=
      (fromFastify('@fastify/ajv-compiler') as () => (schemas: unknown, options: unknown) => RouteCompiler<unknown>)()(externalSchemas, ajvOptions);
    return (route: unknown) => lazyValidator(compile, route);
  }) as unknown as ValidatorBuilder;
  const buildSerializer = ((externalSchemas: unknown, serializerOptions: unknown) => {
    let compiler: SerializerCompiler<unknown> | undefined;
    const compile = (): SerializerCompiler<unknown> => compiler ??=
      (fromFastify('@fastify/fast-json-stringify-compiler') as () => (schemas: unknown, options: unknown) => SerializerCompiler<unknown>)()(externalSchemas, serializerOptions);
    return (route: unknown) => {
      let serialize: ((data: unknown) => string) | undefined;
      return (data: unknown) => (serialize ??= compile()(route))(data);
    };
  }) as unknown as SerializerBuilder;
  return { buildValidator, buildSerializer };
}
