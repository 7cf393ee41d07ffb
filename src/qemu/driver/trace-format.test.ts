import { describe, expect, it } from 'vitest';
import { readFileSync, existsSync } from 'node:fs';
import { DefaultTraceEventsFile, MaxTraceLineBytes, parseTraceCatalog, parseTraceDecl, parseTraceLine, traceLineEvent } from './trace-format.js';

const Decls = `
# comment
virtio_blk_handle_read(void *vdev, void *req, uint64_t sector, size_t nsectors) "vdev %p req %p sector %"PRIu64" nsectors %zu"
virtqueue_pop(void *vq, void *elem, unsigned int in_num, unsigned int out_num) "vq %p elem %p in_num %u out_num %u"
breakpoint_insert(int cpu_index, uint64_t pc, int flags) "cpu=%d pc=0x%" PRIx64 " flags=0x%x"
qemu_system_shutdown_request(int reason) "reason=%d"
blk_named(const char *name, bool ro) "name %s ro %d"
tail_string(int n, const char *msg) "n=%d: %s"
percent(int pct) "%d%% done"
noargs(void) "nothing"
`;
const catalog = parseTraceCatalog(Decls);
const all = new Set(catalog.keys());

describe('trace-events declarations', () => {
  it('folds PRI macros and reads argument types and names', () => {
    const d = catalog.get('breakpoint_insert')!;
    expect(d.format).toBe('cpu=%d pc=0x%llx flags=0x%x');
    expect(d.args).toEqual([{ type: 'int', name: 'cpu_index' }, { type: 'uint64_t', name: 'pc' }, { type: 'int', name: 'flags' }]);
    expect(catalog.get('noargs')!.args).toEqual([]);
    expect(parseTraceDecl('# not one')).toBeUndefined();
    expect(parseTraceDecl('broken(int x "no closing')).toBeUndefined();
  });

  it.skipIf(!existsSync(DefaultTraceEventsFile))('reads the host\'s whole catalog', () => {
    const host = parseTraceCatalog(readFileSync(DefaultTraceEventsFile, 'utf8'));
    expect(host.size).toBeGreaterThan(3000);
    expect(host.get('virtio_blk_handle_read')?.args.map((a) => a.name)).toEqual(['vdev', 'req', 'sector', 'nsectors']);
  });
});

describe('trace log lines', () => {
  const now = new Date('2026-01-01T00:00:00Z');
  it('types arguments per the format: pointers as hex text, integers as numbers, bools, strings', () => {
    expect(parseTraceLine('virtio_blk_handle_read vdev 0x55d4c0a1b2c0 req 0x7f3a00001230 sector 2048 nsectors 8', catalog, all, now)).toEqual({
      event: 'virtio_blk_handle_read', time: now.toISOString(),
      args: { vdev: '0x55d4c0a1b2c0', req: '0x7f3a00001230', sector: 2048, nsectors: 8 },
    });
    expect(parseTraceLine('breakpoint_insert cpu=1 pc=0x81000000 flags=0x10', catalog, all, now)?.args)
      .toEqual({ cpu_index: 1, pc: 0x81000000, flags: 16 });
    expect(parseTraceLine('blk_named name disk 0 ro 1', catalog, all, now)?.args).toEqual({ name: 'disk 0', ro: true });
    expect(parseTraceLine('tail_string n=3: a: b c', catalog, all, now)?.args).toEqual({ n: 3, msg: 'a: b c' });
    expect(parseTraceLine('percent 50% done', catalog, all, now)?.args).toEqual({ pct: 50 });
    expect(parseTraceLine('virtqueue_pop vq (nil) elem 0x1 in_num 1 out_num 2', catalog, all, now)?.args.vq).toBe('0x0');
  });

  it('keeps integers beyond 2^53 exact, as decimal text', () => {
    expect(parseTraceLine('breakpoint_insert cpu=0 pc=0xffffffffffffffff flags=0x0', catalog, all, now)?.args.pc).toBe('18446744073709551615');
  });

  it('reads the thread and time QEMU prints with -msg timestamp=on', () => {
    const r = parseTraceLine('4242@1700000000.123456:qemu_system_shutdown_request reason=6', catalog, all, now);
    expect(r).toEqual({ event: 'qemu_system_shutdown_request', time: '2023-11-14T22:13:20.123Z', tid: 4242, args: { reason: 6 } });
    expect(traceLineEvent('4242@1700000000.123456:virtqueue_pop vq')).toBe('virtqueue_pop');
  });

  it('gives a line that does not fit its format as raw text, and skips other lines', () => {
    expect(parseTraceLine('virtqueue_pop something else', catalog, all, now)?.args).toEqual({ raw: 'something else' });
    expect(parseTraceLine('qemu-system-x86_64: terminating on signal 15', catalog, all, now)).toBeUndefined();
    expect(parseTraceLine('virtqueue_pop vq 0x1 elem 0x2 in_num 1 out_num 1', catalog, new Set(['other']), now)).toBeUndefined();
    expect(parseTraceLine('virtqueue_popx vq', catalog, all, now)).toBeUndefined();
    expect(parseTraceLine(`virtqueue_pop ${'x'.repeat(MaxTraceLineBytes)}`, catalog, all, now)).toBeUndefined();
  });

  it('fuzz: random and mutated lines never throw and stay bounded in time', () => {
    let seed = 12345;
    const rand = (n: number): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
    const samples = [
      'virtio_blk_handle_read vdev 0x55d4c0a1b2c0 req 0x7f3a00001230 sector 2048 nsectors 8',
      '4242@1700000000.123456:breakpoint_insert cpu=1 pc=0xffff flags=0x10',
      'blk_named name disk 0 ro 1', 'tail_string n=3: a: b c', 'percent 50% done',
    ];
    const alphabet = 'abcx0123456789 :=%@.()-_\n\u0000\u00ff';
    const t0 = Date.now();
    for (let i = 0; i < 5000; i++) {
      const base = samples[rand(samples.length)]!.split('');
      const edits = 1 + rand(6);
      for (let e = 0; e < edits; e++) {
        const pos = rand(base.length + 1);
        const op = rand(3);
        if (op === 0) base.splice(pos, 1);
        else if (op === 1) base.splice(pos, 0, alphabet[rand(alphabet.length)]!);
        else base.splice(pos, 0, ...'%s %d %p'.split(''));
      }
      const line = base.join('');
      const r = parseTraceLine(line, catalog, all, new Date(0));
      if (r) expect(typeof r.event).toBe('string');
      parseTraceDecl(`${line}(int x) "${line}"`);
    }
    // not a timing assertion of the code under test: a guard that the fuzz itself stays bounded
    expect(Date.now() - t0).toBeLessThan(60_000);
  });
});
