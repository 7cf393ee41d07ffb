/**
 * The trace registry's log follower: traces started in the same instant share one follower
 * (a second one would deliver every record twice and keep the log open after the last trace),
 * it closes with the last trace, and closeAll (the daemon stopping) closes every one.
 */
import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TraceRecord } from '../api/index.js';
import type { GuestHandle } from '../qemu/index.js';
import { TraceRegistry } from './observability-trace.js';

let dir: string;
const catalog = 'virtqueue_pop(void *vq, void *elem, unsigned int in_num, unsigned int out_num) "vq %p elem %p in_num %u out_num %u"\n';

/** Just what a trace uses of a running guest: QMP for the event states, the run dir's log. */
function fakeHandle(): GuestHandle {
  const states = new Map([['virtqueue_pop', 'disabled']]);
  const handle = {
    runDir: dir,
    exited: new Promise(() => undefined),
    async monitor(cmd: { qmp: { execute: string; arguments?: Record<string, unknown> } }): Promise<unknown> {
      // A QMP round trip: lets two opens interleave as they do against a real QEMU.
      await sleep(5);
      const args = cmd.qmp.arguments ?? {};
      if (cmd.qmp.execute === 'trace-event-get-state') return [...states].map(([name, state]) => ({ name, state }));
      if (cmd.qmp.execute === 'trace-event-set-state') { states.set(String(args.name), args.enable === true ? 'enabled' : 'disabled'); return {}; }
      return [];
    },
  };
  return handle as unknown as GuestHandle;
}

async function until(fn: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (fn()) return;
    await sleep(20);
  }
  throw new Error(`timed out: ${what}`);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vktrace-'));
  await writeFile(join(dir, 'trace-events-all'), catalog);
  await writeFile(join(dir, 'qemu.log'), '');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('TraceRegistry followers', () => {
  it('two traces opened at once share one follower, closed with the last; a later trace sees each record once', async () => {
    const reg = new TraceRegistry(join(dir, 'trace-events-all'));
    const handle = fakeHandle();
    const seen: TraceRecord[][] = [[], [], []];
    const [a, b] = await Promise.all([0, 1].map((i) => reg.open(handle, ['virtqueue_pop'], { record: (r) => seen[i]!.push(r) })));
    expect(reg.followers()).toBe(1);
    await a!.close();
    expect(reg.followers()).toBe(1);
    await b!.close();
    expect(reg.followers()).toBe(0);

    const c = await reg.open(handle, ['virtqueue_pop'], { record: (r) => seen[2]!.push(r) });
    await appendFile(join(dir, 'qemu.log'), 'virtqueue_pop vq 0x1 elem 0x2 in_num 1 out_num 0\nvirtqueue_pop vq 0x1 elem 0x3 in_num 1 out_num 0\n');
    await until(() => seen[2]!.some((r) => r.args.elem === '0x3'), 'records');
    // A second follower (the fault) would deliver the same lines on its own next look.
    await sleep(300);
    expect(seen[2]!.map((r) => r.args.elem)).toEqual(['0x2', '0x3']);
    await c.close();
    expect(reg.followers()).toBe(0);
  });

  it('closeAll closes every follower (the daemon stopping)', async () => {
    const reg = new TraceRegistry(join(dir, 'trace-events-all'));
    await reg.open(fakeHandle(), ['virtqueue_pop'], { record: () => undefined });
    expect(reg.followers()).toBe(1);
    reg.closeAll();
    expect(reg.followers()).toBe(0);
  });
});
