/**
 * The fake driver's save/restore, snapshots and dumps: what QEMU does, minus QEMU. A save
 * writes a small JSON "migration stream" after the caller's header; a restore reads it back
 * and refuses anything else the way QEMU refuses a bad stream (`qmp.command-failed`). Internal
 * snapshot tags are kept per disk image path on the FakeHost, so a tag taken by one guest run
 * is there for the next (as in a qcow2 file). Dumps are small ELF cores (dump/elf-writer.ts).
 */
import { open, readFile, writeFile } from 'node:fs/promises';
import type { DomainDefinition } from '../../conf/index.js';
import { VirtkitError } from '../../util/errors.js';
import { buildElfCore } from '../dump/index.js';
import type { DumpFormat, StreamFile } from './guest-state.js';

const StreamMagic = 'virtkit-fake-migration-stream';

export interface FakeSavedState {
  uuid: string;
  /** The fake guest's memory (FakeGuest.memory), which a restore must bring back. */
  memory: Record<string, string>;
}

/** Writes the fake stream at `file.offset`; returns its length. */
export async function fakeSave(file: StreamFile, state: FakeSavedState): Promise<number> {
  const body = Buffer.from(JSON.stringify({ magic: StreamMagic, ...state }));
  const fh = await open(file.path, 'r+');
  try {
    await fh.write(body, 0, body.length, file.offset);
    await fh.truncate(file.offset + body.length);
  } finally {
    await fh.close();
  }
  return body.length;
}

/** Reads the fake stream back; QEMU's refusal of a bad stream otherwise. */
export async function fakeRestore(file: StreamFile, uuid: string): Promise<FakeSavedState> {
  const bytes = await readFile(file.path);
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.subarray(file.offset).toString('utf8'));
  } catch {
    parsed = undefined;
  }
  const s = parsed as (FakeSavedState & { magic?: string }) | undefined;
  if (!s || s.magic !== StreamMagic || typeof s.memory !== 'object' || s.memory === null) {
    throw new VirtkitError('qmp.command-failed', 'migrate-incoming: the stream is not a migration stream of this machine', { command: 'migrate-incoming' });
  }
  if (s.uuid !== uuid) throw new VirtkitError('qmp.command-failed', `migrate-incoming: the stream is of machine ${s.uuid}, not ${uuid}`, { command: 'migrate-incoming' });
  return { uuid: s.uuid, memory: s.memory };
}

/** Internal snapshot tags per disk image path, as qcow2 files would hold them. */
class FakeSnapshotTags {
  /** disk image path -> tag -> the guest's memory at the snapshot, as JSON */
  private readonly tags = new Map<string, Map<string, string>>();

  private writableDisks(def: DomainDefinition): string[] {
    return def.disks.filter((d) => !d.readonly).map((d) => d.source ?? d.volume ?? d.id);
  }

  apply(def: DomainDefinition, op: 'save' | 'load' | 'delete', tag: string, memory: string): string | undefined {
    const disks = this.writableDisks(def);
    if (disks.length === 0) throw new VirtkitError('operation.unsupported', 'an internal snapshot needs at least one writable qcow2 disk to hold the memory state', {});
    if (op === 'save') {
      for (const d of disks) (this.tags.get(d) ?? this.tags.set(d, new Map()).get(d)!).set(tag, memory);
      return undefined;
    }
    const first = this.tags.get(disks[0]!)?.get(tag);
    if (first === undefined) throw new VirtkitError('qmp.command-failed', `Snapshot '${tag}' does not exist in one or more devices`, { command: `snapshot-${op}` });
    if (op === 'delete') for (const d of disks) this.tags.get(d)?.delete(tag);
    return first;
  }
}

/** The tags of every fake guest's disks (disk paths are unique to a test's temporary directory). */
export const fakeSnapshotTags = new FakeSnapshotTags();

/** A dump of the fake guest: an ELF core with one CPU, one range, and the fake kernel's banner. */
export async function fakeDump(path: string, format: DumpFormat, def: DomainDefinition): Promise<void> {
  if (format !== 'elf') throw new VirtkitError('operation.unsupported', `the fake driver writes ELF dumps only, not ${format}`, { format });
  const ram = Buffer.alloc(4096);
  ram.write('Linux version 6.1.0-fake (fake@virtkit) (gcc) #1 SMP', 256, 'latin1');
  const core = buildElfCore({
    cpus: Array.from({ length: def.vcpus }, (_v, i) => ({ rip: 0xffffffff81000000n + BigInt(i), rsp: 0x7000n })),
    ranges: [{ start: 0, data: ram }],
  });
  await writeFile(path, core);
}
