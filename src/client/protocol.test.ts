import { describe, expect, it } from 'vitest';
import { Methods, type MethodName } from '../api/methods.js';
import { isVirtkitError } from '../util/errors.js';
import { consolePath, decodeEventMessage, decodeReply, errorFromBody, eventsPath, queryString, requestFor } from './protocol.js';

describe('requestFor', () => {
  it('fills route parameters (encoded), the query and the body from the method table', () => {
    expect(requestFor('domain.info', { params: { name: 'a b/c' } })).toEqual({ method: 'GET', path: '/domains/a%20b%2Fc' });
    expect(requestFor('domain.list', { query: { all: true } })).toEqual({ method: 'GET', path: '/domains?all=true' });
    expect(requestFor('domain.start', { params: { name: 'web1' } })).toEqual({ method: 'POST', path: '/domains/web1/start', body: {} });
    expect(requestFor('domain.shutdown', { params: { name: 'w' }, body: { timeout: 5 } }))
      .toEqual({ method: 'POST', path: '/domains/w/shutdown', body: { timeout: 5 } });
  });

  it('builds a request for every method of the table', () => {
    for (const [name, spec] of Object.entries(Methods) as [MethodName, (typeof Methods)[MethodName]][]) {
      const params = Object.fromEntries([...spec.path.matchAll(/:([A-Za-z]+)/g)].map((m) => [m[1], 'x']));
      const req = requestFor(name, { params } as never);
      expect(req.method).toBe(spec.http);
      expect(req.path).not.toContain(':');
      expect('body' in req).toBe('body' in spec);
    }
  });

  it('leaves undefined query values out', () => {
    expect(queryString({ since: undefined, follow: false })).toBe('?follow=false');
    expect(queryString({})).toBe('');
  });
});

describe('stream paths', () => {
  it('names the cursor and mode', () => {
    expect(eventsPath(undefined, true)).toBe('/events?follow=true');
    expect(eventsPath(0, false)).toBe('/events?since=0&follow=false');
    expect(consolePath('web 1', 'read')).toBe('/domains/web%201/console?mode=read');
    expect(consolePath('w', 'write', true)).toBe('/domains/w/console?mode=write&history=true');
  });
});

describe('decoding replies and errors', () => {
  it('returns the JSON of a 2xx and throws the envelope of anything else', () => {
    expect(decodeReply(200, '{"ok":true}')).toEqual({ ok: true });
    expect(decodeReply(204, '')).toBeUndefined();
    let err: unknown;
    try { decodeReply(409, '{"error":{"code":"domain.invalid-state","message":"running","data":{"name":"w"}}}'); } catch (e) { err = e; }
    expect(isVirtkitError(err, 'domain.invalid-state')).toBe(true);
    expect((err as { data: unknown }).data).toEqual({ name: 'w', status: 409 });
  });

  it('falls back to the status when the body is not an envelope, and refuses a 2xx that is not JSON', () => {
    expect(errorFromBody(403, undefined).code).toBe('access.denied');
    expect(errorFromBody(409, { error: { code: 'no.such-code', message: 'm' } }).code).toBe('request.invalid');
    expect(errorFromBody(500, 'text').message).toBe('daemon replied HTTP 500');
    expect(() => decodeReply(502, '<html>')).toThrow(/HTTP 502/);
    expect(() => decodeReply(200, '<html>')).toThrow(/not JSON/);
  });
});

describe('decodeEventMessage', () => {
  it('tells the cursor, events and errors apart', () => {
    expect(decodeEventMessage('{"cursor":12}')).toEqual({ kind: 'cursor', seq: 12 });
    const ev = { seq: 13, type: 'started', domain: 'w', uuid: 'u', time: 't' };
    expect(decodeEventMessage(JSON.stringify(ev))).toEqual({ kind: 'event', event: ev });
    const e = decodeEventMessage('{"error":{"code":"store.compacted","message":"gone","data":{"oldest":5}}}');
    expect(e.kind).toBe('error');
    if (e.kind === 'error') {
      expect(e.error.code).toBe('store.compacted');
      expect(e.error.data.oldest).toBe(5);
    }
  });

  it('refuses what it cannot read with a typed error, never a crash', () => {
    for (const bad of ['', 'not json', 'null', '42', '"text"', '[]', '{"seq":"1","type":"x"}', '{"cursor":"3"}']) {
      expect(() => decodeEventMessage(bad)).toThrow(expect.objectContaining({ code: 'internal' }) as Error);
    }
  });
});
