import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '../util/errors.js';
import { codeForStatus, httpStatusOf } from './http-status.js';
import { AccessClasses, StreamSpecs } from './access.js';
import { Methods, routePath, type MethodSpec } from './methods.js';
import { DomainStates } from './schemas.js';
import { buildOpenApi } from './openapi.js';
import { managerDirs } from './paths.js';

describe('method table', () => {
  it('has one route per method, each with a result schema', () => {
    const routes = Object.values(Methods).map((m) => `${m.http} ${m.path}`);
    expect(new Set(routes).size).toBe(routes.length);
    for (const [name, m] of Object.entries(Methods)) {
      expect(name).toMatch(/^[a-z]+\.[a-zA-Z]+$/);
      expect(m.result).toBeDefined();
      if (m.path.includes(':name')) expect('params' in m).toBe(true);
    }
  });

  it('has every method declare its states, access class and whether it is long', () => {
    for (const [name, m] of Object.entries(Methods) as [string, MethodSpec][]) {
      // Declared, not defaulted: the keys are there (the type requires them too).
      for (const key of ['states', 'access', 'long']) expect(Object.keys(m), `${name}.${key}`).toContain(key);
      expect(AccessClasses, name).toContain(m.access);
      expect(typeof m.long, name).toBe('boolean');
      if (Array.isArray(m.states)) {
        expect(m.states.length, name).toBeGreaterThan(0);
        for (const s of m.states) expect(DomainStates, name).toContain(s);
      } else {
        expect([null, 'any'], name).toContain(m.states);
      }
      // A method on one domain says which states it accepts; one on none says so.
      expect(m.states === null, name).toBe(!m.path.includes(':name'));
      // Reads are GETs and GETs are reads.
      expect(m.access === 'read', name).toBe(m.http === 'GET');
    }
  });

  it('declares the contract the manager enforces today', () => {
    expect(Methods['domain.start'].states).toEqual(['shutoff', 'crashed']);
    expect(Methods['domain.suspend'].states).toEqual(['running']);
    expect(Methods['domain.resume'].states).toEqual(['paused']);
    expect(Methods['domain.reboot'].states).toEqual(['running']);
    expect(Methods['domain.shutdown'].states).toEqual(['running', 'paused']);
    expect(Methods['domain.monitorCommand'].access).toBe('admin');
    expect(Methods['host.shutdown'].access).toBe('admin');
    expect(Methods['pool.define'].access).toBe('admin');
    expect(Methods['domain.start'].access).toBe('write');
    const long = Object.entries(Methods).filter(([, m]) => m.long).map(([n]) => n).sort();
    expect(long).toEqual(['domain.dump', 'domain.managedSave', 'domain.restore', 'domain.save', 'domain.shutdown',
      'domain.snapshotCreate', 'domain.snapshotRevert', 'host.shutdown', 'volume.clone']);
    for (const spec of Object.values(StreamSpecs)) expect(AccessClasses).toContain(spec.access);
    expect(StreamSpecs['store.snoop'].access).toBe('admin');
    expect(StreamSpecs['volume.upload']).toEqual({ access: 'write', long: true });
  });

  it('fills route parameters, encoding them', () => {
    expect(routePath('/domains/:name/start', { name: 'web1' })).toBe('/domains/web1/start');
    expect(routePath('/domains/:name', { name: 'a/b?c' })).toBe('/domains/a%2Fb%3Fc');
    expect(() => routePath('/domains/:name', {})).toThrow(/missing route parameter/);
  });
});

describe('error code -> HTTP status', () => {
  it('maps every code to a 4xx or 5xx status', () => {
    for (const code of ErrorCodes) {
      const status = httpStatusOf(code);
      expect(status >= 400 && status < 600, `${code} -> ${status}`).toBe(true);
    }
  });

  it('maps the manager\'s codes as the API documents them', () => {
    expect(httpStatusOf('domain.not-found')).toBe(404);
    expect(httpStatusOf('definition.invalid')).toBe(400);
    expect(httpStatusOf('domain.exists')).toBe(409);
    expect(httpStatusOf('domain.invalid-state')).toBe(409);
    expect(httpStatusOf('domain.field-immutable')).toBe(409);
    expect(httpStatusOf('request.invalid')).toBe(400);
    expect(httpStatusOf('request.too-large')).toBe(413);
    expect(httpStatusOf('qemu.failed-to-start')).toBe(500);
    expect(httpStatusOf('qemu.not-found')).toBe(500);
    expect(httpStatusOf('store.conflict')).toBe(503);
    expect(httpStatusOf('internal')).toBe(500);
    expect(httpStatusOf('access.denied')).toBe(403);
    expect(httpStatusOf('operation.unsupported')).toBe(422);
  });

  it('falls back to a code by status when a reply carries none', () => {
    expect(codeForStatus(413)).toBe('request.too-large');
    expect(codeForStatus(403)).toBe('access.denied');
    expect(codeForStatus(404)).toBe('request.invalid');
    expect(codeForStatus(502)).toBe('internal');
  });
});

describe('OpenAPI document', () => {
  it('has one operation per method plus the streams, with unique ids', () => {
    const doc = buildOpenApi() as { paths: Record<string, Record<string, { operationId: string }>> };
    const ids = Object.values(doc.paths).flatMap((p) => Object.values(p).map((op) => op.operationId));
    expect(new Set(ids).size).toBe(ids.length);
    for (const name of Object.keys(Methods)) expect(ids).toContain(name);
    expect(ids).toEqual(expect.arrayContaining(['events.stream', 'store.snoop', 'domain.console']));
    expect(Object.keys(doc.paths)).toContain('/domains/{name}/start');
    const suspend = (doc.paths['/domains/{name}/suspend'] as Record<string, Record<string, unknown>>)['post']!;
    expect(suspend).toMatchObject({ 'x-virtkit-states': ['running'], 'x-virtkit-access': 'write', 'x-virtkit-long': false });
  });
});

describe('default directories', () => {
  it('uses /var/lib/virtkit and /run/virtkit for root', () => {
    expect(managerDirs({ isRoot: true, home: '/root', env: {} })).toEqual({
      stateDir: '/var/lib/virtkit', runDir: '/run/virtkit', socketPath: '/var/lib/virtkit/virtkit.sock' });
  });

  it('uses the XDG directories for other users', () => {
    expect(managerDirs({ isRoot: false, home: '/home/u', env: { XDG_STATE_HOME: '/xs', XDG_RUNTIME_DIR: '/run/user/1000' } }))
      .toEqual({ stateDir: '/xs/virtkit', runDir: '/run/user/1000/virtkit', socketPath: '/xs/virtkit/virtkit.sock' });
    expect(managerDirs({ isRoot: false, home: '/home/u', env: { XDG_STATE_HOME: 'relative' } }).stateDir).toBe('/home/u/.local/state/virtkit');
    expect(managerDirs({ isRoot: false, home: '/home/u', env: {} }).runDir).toBe('/home/u/.local/state/virtkit/run');
  });

  it('keeps run dirs inside an explicit state dir unless told otherwise', () => {
    expect(managerDirs({ isRoot: true, home: '/root', env: {} }, { stateDir: '/tmp/s' }).runDir).toBe('/tmp/s/run');
    expect(managerDirs({ isRoot: true, home: '/root', env: {} }, { stateDir: '/tmp/s', runDir: '/tmp/r' }).runDir).toBe('/tmp/r');
  });
});
