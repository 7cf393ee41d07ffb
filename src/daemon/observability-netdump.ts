/**
 * Packet capture of a guest NIC (`virtkit netdump`): a QEMU `filter-dump` object on the NIC's
 * netdev (`<id>-netdev`) writes pcap into the run dir; the daemon streams the file's bytes as
 * they grow, counting records so `--count N` ends after exactly N packets, and removes the
 * filter (object-del) when the capture ends, fails, or the client goes away. The pcap file in
 * the run dir is the daemon's; the client writes its own FILE from the stream, so the daemon
 * never creates files where a caller asks.
 */
import { open, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { NicDefinition } from '../conf/index.js';
import { netdevId, type GuestHandle } from '../qemu/index.js';
import { VirtkitError } from '../util/errors.js';
import { PcapVnetHeaderStripper } from './observability-pcap-vnet.js';

const PcapGlobalHeaderBytes = 24;
const PcapRecordHeaderBytes = 16;
/** A record larger than this is not a packet of a NIC (filter-dump snaps at 64 KiB + headers). */
const MaxRecordBytes = 256 * 1024;

/**
 * Counts pcap records in a byte stream as it arrives. `accept(chunk)` says how many bytes of
 * the chunk belong to the first `limit` records (all of them without a limit). A state
 * machine over the global header, each record's header, and its data.
 */
export class PcapRecordCounter {
  records = 0;
  private phase: 'global' | 'header' | 'data' = 'global';
  /** Bytes still needed to finish the current part. */
  private need = PcapGlobalHeaderBytes;
  /** The bytes of the current header part gathered so far. */
  private part: Buffer[] = [];
  private little = true;

  constructor(private readonly limit = Infinity) {}

  get done(): boolean {
    return this.records >= this.limit;
  }

  accept(chunk: Buffer): number {
    let used = 0;
    while (used < chunk.length && !this.done) {
      const take = Math.min(this.need, chunk.length - used);
      if (this.phase !== 'data') this.part.push(chunk.subarray(used, used + take));
      used += take;
      this.need -= take;
      if (this.need > 0) break;
      const bytes = Buffer.concat(this.part);
      this.part = [];
      if (this.phase === 'global') {
        const magic = bytes.readUInt32LE(0);
        if (magic === 0xa1b2c3d4 || magic === 0xa1b23c4d) this.little = true;
        else if (magic === 0xd4c3b2a1 || magic === 0x4d3cb2a1) this.little = false;
        else throw new VirtkitError('internal', 'the capture is not pcap (bad magic number)', { magic });
        this.phase = 'header';
        this.need = PcapRecordHeaderBytes;
      } else if (this.phase === 'header') {
        const incl = this.little ? bytes.readUInt32LE(8) : bytes.readUInt32BE(8);
        if (incl > MaxRecordBytes) throw new VirtkitError('internal', `a pcap record claims ${incl} bytes`, { bytes: incl });
        if (incl === 0) {
          this.records++;
          this.need = PcapRecordHeaderBytes;
        } else {
          this.phase = 'data';
          this.need = incl;
        }
      } else {
        this.records++;
        this.phase = 'header';
        this.need = PcapRecordHeaderBytes;
      }
    }
    return used;
  }
}

/**
 * Refuses NICs whose traffic QEMU does not see: with vhost-net the host kernel moves the
 * packets. The live definition carries what the manager resolved at start (`auto` became on or
 * off); an unresolved `auto` on a tap is refused too, as it may be vhost.
 */
export function netdumpRefusal(nic: NicDefinition): VirtkitError | undefined {
  const vhost: unknown = nic.vhost;
  if (vhost === true || vhost === 'on' || (nic.network !== 'user' && vhost === 'auto')) {
    return new VirtkitError('operation.unsupported', `NIC "${nic.id}" uses vhost-net: its packets bypass QEMU, which cannot capture them (capture on the host's tap device instead, or set vhost: off)`, { iface: nic.id });
  }
  return undefined;
}

/**
 * Whether the packets filter-dump sees on this NIC's netdev carry the virtio-net header: a
 * tap (every NIC not on user networking) under a virtio NIC uses vnet_hdr; slirp and the
 * emulated NICs pass plain frames.
 */
export function carriesVnetHeader(nic: NicDefinition): boolean {
  return nic.network !== 'user' && nic.model === 'virtio';
}

export interface NetdumpOptions {
  iface?: string;
  durationMs?: number;
  count?: number;
}

export interface NetdumpSink {
  write(bytes: Buffer): void;
  /** The capture ended (duration, count or stop); `why` for the log. */
  end(why: 'duration' | 'count' | 'stopped' | 'guest-stopped'): void;
  fail(err: unknown): void;
}

let captures = 0;

/**
 * Starts a capture; resolves once the filter is in place (typed errors before that leave
 * nothing behind). Returns what stops it early (the client went away).
 */
export async function startNetdump(handle: GuestHandle, name: string, opts: NetdumpOptions, sink: NetdumpSink): Promise<() => Promise<void>> {
  const nics = handle.liveDefinition().nics;
  const nic = opts.iface === undefined ? nics[0] : nics.find((n) => n.id === opts.iface);
  if (!nic) {
    throw opts.iface === undefined
      ? new VirtkitError('argument.invalid', `domain "${name}" has no NIC to capture`, { name })
      : new VirtkitError('argument.invalid', `--iface ${opts.iface}: domain "${name}" has no NIC of that id (it has: ${nics.map((n) => n.id).join(', ') || 'none'})`, { name, iface: opts.iface });
  }
  const refusal = netdumpRefusal(nic);
  if (refusal) throw refusal;
  const id = `virtkit-netdump-${process.pid}-${++captures}`;
  const file = join(handle.runDir, `${id}.pcap`);
  await rm(file, { force: true });
  await handle.monitor({ qmp: { execute: 'object-add', arguments: { 'qom-type': 'filter-dump', id, netdev: netdevId(nic), queue: 'all', file } } });
  const counter = new PcapRecordCounter(opts.count ?? Infinity);
  const stripper = carriesVnetHeader(nic) ? new PcapVnetHeaderStripper() : undefined;
  let fh: FileHandle | undefined;
  let offset = 0;
  let stopped: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let duration: NodeJS.Timeout | undefined;
  const buf = Buffer.alloc(64 * 1024);

  const pump = async (): Promise<void> => {
    fh ??= await open(file, 'r');
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
      if (bytesRead === 0) return;
      offset += bytesRead;
      const chunk = stripper ? stripper.push(Buffer.from(buf.subarray(0, bytesRead))) : buf.subarray(0, bytesRead);
      const used = counter.accept(chunk);
      if (used > 0) sink.write(Buffer.from(chunk.subarray(0, used)));
      if (counter.done) return;
    }
  };

  const stop = (why: Parameters<NetdumpSink['end']>[0] | Error): Promise<void> => stopped ??= (async () => {
    if (timer) clearTimeout(timer);
    if (duration) clearTimeout(duration);
    // The filter goes first, then what it wrote last is sent.
    const removed = handle.monitor({ qmp: { execute: 'object-del', arguments: { id } } }).then(() => undefined, (err: unknown) => err);
    const removeErr = why === 'guest-stopped' ? undefined : await removed;
    try {
      if (!(why instanceof Error) && !counter.done) await pump();
    } catch { /* the stream ends with what was read */ }
    await fh?.close().catch(() => undefined);
    await rm(file, { force: true });
    if (why instanceof Error) sink.fail(why);
    else if (removeErr !== undefined && why !== 'stopped') sink.fail(removeErr);
    else sink.end(why);
  })();

  const tick = (): void => {
    pump().then(() => {
      if (counter.done) void stop('count');
      else if (!stopped) timer = setTimeout(tick, 50);
    }, (err: unknown) => { void stop(err instanceof Error ? err : new Error(String(err))); });
  };
  timer = setTimeout(tick, 0);
  if (opts.durationMs !== undefined) duration = setTimeout(() => void stop('duration'), opts.durationMs);
  void handle.exited.then(() => stop('guest-stopped'));
  return () => stop('stopped');
}
