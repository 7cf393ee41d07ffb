/**
 * The lazy schema compilers against fastify's own: every method's schemas compile (as they
 * did when fastify compiled them at start-up, so a broken one still fails here and not at a
 * user's first call), nothing is compiled before a route's first call, and a route answers the
 * same with either: coercion, defaults, the validation error, the serialized result.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Methods, type MethodName, type MethodSpec } from '../api/index.js';
import { lazySchemaCompilers } from './lazy-compilers.js';

const ajv = { customOptions: { removeAdditional: false as const, coerceTypes: 'array' as const, useDefaults: true } };

/** Every method of the table as a route that echoes its validated input, or answers `reply` when given. */
function appWith(lazy: boolean, reply?: unknown): FastifyInstance {
  const app = Fastify({ ajv, ...(lazy ? { schemaController: { compilersFactory: lazySchemaCompilers() } } : {}) }) as unknown as FastifyInstance;
  for (const [method, spec] of Object.entries(Methods) as [MethodName, MethodSpec][]) {
    app.route({
      method: spec.http, url: spec.path,
      schema: {
        ...(spec.params ? { params: spec.params } : {}),
        ...(spec.query ? { querystring: spec.query } : {}),
        ...(spec.body ? { body: spec.body } : {}),
        response: { [spec.status ?? 200]: spec.result },
      },
      handler: async (req, res) => {
        void res.status(spec.status ?? 200);
        return reply ?? { method, params: req.params, query: req.query, body: req.body };
      },
    });
  }
  return app;
}

describe('lazy schema compilers', () => {
  let eager: FastifyInstance;
  let lazy: FastifyInstance;
  beforeAll(async () => {
    eager = appWith(false);
    lazy = appWith(true);
    // fastify compiles every route here: a schema that does not compile throws.
    await eager.ready();
    await lazy.ready();
  });
  afterAll(async () => {
    await eager.close();
    await lazy.close();
  });

  it('compile nothing until a route is called: a schema that cannot compile fails at its first call, not at ready', async () => {
    const broken = { type: 'object', properties: { n: { type: 'no-such-type' } } };
    const plain = Fastify({ ajv });
    plain.get('/x', { schema: { querystring: broken } }, async () => ({ ok: true }));
    await expect(plain.ready()).rejects.toThrow(/no-such-type|schema/i);
    await plain.close();
    const deferred = Fastify({ ajv, schemaController: { compilersFactory: lazySchemaCompilers() } });
    deferred.get('/x', { schema: { querystring: broken } }, async () => ({ ok: true }));
    await deferred.ready();
    expect((await deferred.inject({ url: '/x?n=1' })).statusCode).toBe(500);
    await deferred.close();
  });

  const cases: { name: string; method: 'GET' | 'POST' | 'PUT' | 'DELETE'; url: string; payload?: unknown }[] = [
    { name: 'a query coerced', method: 'GET', url: '/domains?all=true' },
    { name: 'a query refused', method: 'GET', url: '/domains?all=maybe' },
    { name: 'an unknown query field', method: 'GET', url: '/domains?bogus=1' },
    { name: 'a body with its defaults', method: 'POST', url: '/domains', payload: { text: 'name: a\n' } },
    { name: 'a body with an extra field', method: 'POST', url: '/domains', payload: { text: 'name: a\n', bogus: 1 } },
    { name: 'a body of the wrong type', method: 'POST', url: '/domains', payload: { text: 5 } },
    { name: 'a path parameter', method: 'GET', url: '/domains/a%20b' },
  ];
  for (const c of cases) {
    it(`answer as fastify's own: ${c.name}`, async () => {
      const opts = { method: c.method, url: c.url, ...(c.payload !== undefined ? { payload: c.payload as object } : {}) };
      const [a, b] = await Promise.all([eager.inject(opts), lazy.inject(opts)]);
      expect(b.statusCode).toBe(a.statusCode);
      expect(b.json()).toEqual(a.json());
    });
  }

  it('serialize a result as fastify\'s own: unknown fields dropped, known ones kept', async () => {
    const result = { name: 'a', uuid: '00000000-0000-4000-8000-000000000000', state: 'shutoff', memory: 1, vcpus: 1, autostart: false, tainted: [], extra: 'dropped' };
    const e = appWith(false, result);
    const l = appWith(true, result);
    const [a, b] = await Promise.all([e.inject({ url: '/domains/a' }), l.inject({ url: '/domains/a' })]);
    expect(b.body).toBe(a.body);
    expect(b.json()).not.toHaveProperty('extra');
    await Promise.all([e.close(), l.close()]);
  });
});
