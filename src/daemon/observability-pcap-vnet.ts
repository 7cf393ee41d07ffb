/**
 * QEMU 7.2's filter-dump writes what passes the netdev as is: on a tap whose peer is a
 * virtio-net NIC (vnet_hdr in use), each packet starts with the 12-byte virtio-net header
 * (struct virtio_net_hdr_mrg_rxbuf), so tcpdump reads garbage. 7.2's filter-dump has no
 * property to drop it (`qom-list-properties typename=filter-dump`: type, queue, netdev,
 * insert, status, position, maxlen, file), so the capture stream is rewritten here: each
 * record loses its first 12 bytes and both of its lengths shrink by as much.
 */
import { VirtkitError } from '../util/errors.js';

/** virtio_net_hdr_mrg_rxbuf: what a virtio 1.0 NIC and its tap agree on. */
export const VirtioNetHeaderBytes = 12;
const GlobalBytes = 24;
const RecordHeaderBytes = 16;
/** As the record counter: a record larger than this is not a packet. */
const MaxRecordBytes = 256 * 1024;

export class PcapVnetHeaderStripper {
  private pending: Buffer = Buffer.alloc(0);
  /** Chunks not yet joined to `pending`: a large record arriving in slices is joined once. */
  private waiting: Buffer[] = [];
  private waitingBytes = 0;
  /** Bytes `pending` must reach before anything more can be written. */
  private want = GlobalBytes;
  private sawGlobal = false;
  private little = true;

  constructor(private readonly headerBytes = VirtioNetHeaderBytes) {}

  /** The rewritten bytes of the whole records (and global header) completed by `chunk`. */
  push(chunk: Buffer): Buffer {
    this.waiting.push(chunk);
    this.waitingBytes += chunk.length;
    if (this.pending.length + this.waitingBytes < this.want) return Buffer.alloc(0);
    this.pending = Buffer.concat([this.pending, ...this.waiting]);
    this.waiting = [];
    this.waitingBytes = 0;
    const out: Buffer[] = [];
    let at = 0;
    if (!this.sawGlobal) {
      if (this.pending.length < GlobalBytes) return Buffer.alloc(0);
      const magic = this.pending.readUInt32LE(0);
      if (magic === 0xa1b2c3d4 || magic === 0xa1b23c4d) this.little = true;
      else if (magic === 0xd4c3b2a1 || magic === 0x4d3cb2a1) this.little = false;
      else throw new VirtkitError('internal', 'the capture is not pcap (bad magic number)', { magic });
      out.push(Buffer.from(this.pending.subarray(0, GlobalBytes)));
      at = GlobalBytes;
      this.sawGlobal = true;
    }
    while (this.pending.length - at >= RecordHeaderBytes) {
      const read = (o: number): number => (this.little ? this.pending.readUInt32LE(at + o) : this.pending.readUInt32BE(at + o));
      const incl = read(8);
      const orig = read(12);
      if (incl > MaxRecordBytes) throw new VirtkitError('internal', `a pcap record claims ${incl} bytes`, { bytes: incl });
      if (this.pending.length - at < RecordHeaderBytes + incl) { this.want = RecordHeaderBytes + incl; break; }
      const cut = Math.min(this.headerBytes, incl);
      const header = Buffer.from(this.pending.subarray(at, at + RecordHeaderBytes));
      const write = (o: number, v: number): void => { if (this.little) header.writeUInt32LE(v, o); else header.writeUInt32BE(v, o); };
      write(8, incl - cut);
      write(12, Math.max(0, orig - cut));
      out.push(header, this.pending.subarray(at + RecordHeaderBytes + cut, at + RecordHeaderBytes + incl));
      at += RecordHeaderBytes + incl;
    }
    this.pending = Buffer.from(this.pending.subarray(at));
    if (this.pending.length < RecordHeaderBytes) this.want = RecordHeaderBytes;
    return Buffer.concat(out);
  }
}
