/**
 * The fake driver's side of observability: the QMP commands a trace, a capture and the
 * statistics use, answered as QEMU 7.2 answers them (same results, same errors), from a small
 * catalog of trace events. `FakeGuest.traceHit(event, text)` is the guest doing something
 * traced: when the event is on, its log line is appended to the run dir's qemu.log, where the
 * QEMU driver's trace records come from too.
 */
import { appendFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { DomainDefinition } from '../../conf/index.js';
import { VirtkitError } from '../../util/errors.js';

/** The fake's trace events (a few of QEMU's, with their states at start). */
export const FakeTraceEvents: ReadonlyMap<string, 'enabled' | 'disabled' | 'unavailable'> = new Map([
  ['qemu_system_shutdown_request', 'enabled'],
  ['virtio_blk_handle_read', 'disabled'],
  ['virtio_blk_handle_write', 'disabled'],
  ['virtio_blk_req_complete', 'disabled'],
  ['virtio_blk_rw_complete', 'disabled'],
  ['virtqueue_pop', 'disabled'],
  ['virtqueue_fill', 'disabled'],
  ['virtio_notify', 'disabled'],
  ['dma_blk_io', 'unavailable'],
]);

/** What one fake QEMU keeps for these commands. */
export class FakeObservedState {
  readonly traceStates = new Map(FakeTraceEvents);
  readonly objects = new Map<string, Record<string, unknown>>();
  /** Block counters by disk id, moved by tests (`bump`). */
  readonly blockStats = new Map<string, { rd_bytes: number; wr_bytes: number; rd_operations: number; wr_operations: number }>();
  /** Every trace-event-set-state, in order (tests check what was switched). */
  readonly setStateLog: { name: string; enable: boolean }[] = [];

  constructor(private readonly runDir: string, private readonly def: () => DomainDefinition, private readonly pid: number) {}

  /** The guest does something traced: logged when the event is on (as QEMU's log backend does). */
  traceHit(event: string, text: string): void {
    if (this.traceStates.get(event) !== 'enabled') return;
    const log = join(this.runDir, 'qemu.log');
    if (existsSync(this.runDir)) appendFileSync(log, `${event} ${text}\n`);
  }

  /** The QMP command's result, or undefined when it is not one of these. */
  command(execute: string, args: Record<string, unknown>): unknown {
    switch (execute) {
      case 'trace-event-get-state':
        return this.matching(String(args.name));
      case 'trace-event-set-state': {
        const matched = this.matching(String(args.name));
        for (const e of matched) {
          if (e.state === 'unavailable') continue;
          this.traceStates.set(e.name, args.enable === true ? 'enabled' : 'disabled');
          this.setStateLog.push({ name: e.name, enable: args.enable === true });
        }
        return {};
      }
      case 'query-cpus-fast':
        return Array.from({ length: this.def().vcpus }, (_v, i) => ({ 'cpu-index': i, 'thread-id': this.pid * 100 + i, target: 'x86_64' }));
      case 'query-blockstats':
        return [...this.def().disks.map((d) => {
          const s = this.blockStats.get(d.id) ?? { rd_bytes: 0, wr_bytes: 0, rd_operations: 0, wr_operations: 0 };
          return { device: '', qdev: `/machine/peripheral/${d.id}/virtio-backend`, stats: { ...s, flush_operations: 0, rd_total_time_ns: 0, wr_total_time_ns: 0 } };
        }),
        // Block nodes that are no disk of the definition, as a UEFI guest's pflash pair is in QEMU's answer.
        { device: '', qdev: '/machine/system.flash0', stats: { rd_bytes: 0, wr_bytes: 0, rd_operations: 0, wr_operations: 0, flush_operations: 0, rd_total_time_ns: 0, wr_total_time_ns: 0 } }];
      case 'query-balloon':
        throw new VirtkitError('qmp.command-failed', 'query-balloon: No balloon device has been activated', { command: execute, class: 'DeviceNotActive', desc: 'No balloon device has been activated' });
      case 'query-rx-filter':
        return this.def().nics.map((n) => ({ name: n.id, promiscuous: false, 'main-mac': n.mac }));
      case 'object-add': {
        const id = String(args.id);
        if (this.objects.has(id)) throw qmpError(execute, `attempt to add duplicate property '${id}' to object (type 'container')`);
        const netdev = String(args.netdev);
        if (!this.def().nics.some((n) => `${n.id}-netdev` === netdev)) throw qmpError(execute, `Parameter 'netdev' expects a netdev backend (no '${netdev}')`);
        this.objects.set(id, { ...args });
        if (args['qom-type'] === 'filter-dump' && typeof args.file === 'string') appendFileSync(args.file, PcapHeader);
        return {};
      }
      case 'object-del': {
        const id = String(args.id);
        if (!this.objects.delete(id)) throw qmpError(execute, `object '${id}' not found`);
        return {};
      }
      default:
        return undefined;
    }
  }

  private matching(pattern: string): { name: string; vcpu: boolean; state: string }[] {
    const glob = /[*?]/.test(pattern);
    if (!glob) {
      const state = this.traceStates.get(pattern);
      if (state === undefined) throw qmpError('trace-event-get-state', `unknown event "${pattern}"`);
      return [{ name: pattern, vcpu: false, state }];
    }
    const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
    return [...this.traceStates].filter(([name]) => re.test(name)).map(([name, state]) => ({ name, vcpu: false, state }));
  }
}

/** A pcap global header (little-endian, microseconds, Ethernet), as filter-dump writes first. */
const PcapHeader = Buffer.from('d4c3b2a1020004000000000000000000ffff000001000000', 'hex');

function qmpError(command: string, desc: string): VirtkitError {
  return new VirtkitError('qmp.command-failed', `${command}: ${desc}`, { command, class: 'GenericError', desc });
}
