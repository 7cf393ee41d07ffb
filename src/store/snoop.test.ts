import { describe, expect, it } from 'vitest';
import { formatSnoopHeader, formatSnoopJson, formatSnoopLine } from './snoop.js';
import type { SnoopRecord } from './types.js';

const cli = { pid: 4711, client: 'virtkit' };

function line(r: Omit<SnoopRecord, 'time'>): string {
  return formatSnoopLine({ time: 0, ...r }).replace(/ +/g, ' ');
}

describe('snoop lines', () => {
  it('reads like xenstore-snoop: pid, client, tx, op, path, value, result', () => {
    expect(formatSnoopHeader()).toMatch(/^PID +CLIENT +TX +OP$/);
    expect(line({ origin: cli, tx: '-', op: 'write', path: '/domain/web1/state', value: 'running', result: 'OK', revision: 42 }))
      .toBe('4711 virtkit - WRITE: /domain/web1/state running -> OK @42');
    expect(line({ origin: cli, tx: 7, op: 'read', path: '/domain/web1/state', value: 'running', result: 'OK' }))
      .toBe('4711 virtkit 7 READ: /domain/web1/state -> running');
    expect(line({ origin: cli, tx: 7, op: 'read', path: '/domain/web2/state', result: 'ENOENT' }))
      .toBe('4711 virtkit 7 [ERROR] READ: /domain/web2/state -> ENOENT');
    expect(line({ origin: {}, tx: 7, op: 'tx-start', result: 'OK' })).toBe('- - 7 TX-START: -> 7');
    expect(line({ origin: {}, tx: 7, op: 'commit', result: 'OK', revision: 43 })).toBe('- - 7 COMMIT: -> OK @43');
    expect(line({ origin: {}, tx: 8, op: 'commit', path: '/domain/web1/state', result: 'EAGAIN' }))
      .toBe('- - 8 [ERROR] COMMIT: /domain/web1/state -> EAGAIN');
    expect(line({ origin: { pid: 1 }, tx: '-', op: 'rm', path: '/domain/web1', result: 'OK', revision: 44 }))
      .toBe('1 - - RM: /domain/web1 -> OK @44');
    expect(line({ origin: cli, tx: '-', op: 'list', path: '/domain', value: 'a b', result: 'OK' }))
      .toBe('4711 virtkit - LIST: /domain -> "a b"');
    expect(line({ origin: cli, tx: '-', op: 'watch-event', path: '/domain/web1/state', value: 'paused', result: 'OK', revision: 45 }))
      .toBe('4711 virtkit - WATCH-EVENT: /domain/web1/state paused -> OK @45');
  });

  it('keeps one record on one line whatever the value or client name holds', () => {
    const value = `{"name": "web1",\n"memory": 1}${'x'.repeat(500)}`;
    const out = formatSnoopLine({ time: 0, origin: { client: 'evil\nclient' }, tx: '-', op: 'write', path: '/d', value, result: 'OK' });
    expect(out).not.toContain('\n');
    expect(out).toContain('evil?client');
    expect(out).toContain(`...(${value.length} chars)`);
    expect(line({ origin: {}, tx: '-', op: 'read', path: '/d', value: '', result: 'OK' })).toBe('- - - READ: /d -> ""');
  });

  it('has a JSON form with every field', () => {
    const record: SnoopRecord = { time: 1, origin: cli, tx: 3, op: 'write', path: '/a', value: 'v\n', result: 'OK' };
    expect(JSON.parse(formatSnoopJson(record))).toEqual(record);
    expect(formatSnoopJson(record)).not.toContain('\n');
  });
});
