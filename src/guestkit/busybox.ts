/**
 * Locates a statically linked busybox on the host (Debian: busybox-static). The initramfs has
 * no C library, so a dynamically linked busybox would fail in the guest with a confusing
 * "not found" from the kernel; we check for an ELF interpreter up front instead.
 */
import { open } from 'node:fs/promises';
import { VirtkitError } from '../util/errors.js';

export const BUSYBOX_CANDIDATES = ['/bin/busybox', '/usr/bin/busybox', '/usr/sbin/busybox'] as const;

const PT_INTERP = 3;

/** True if the file is a 64-bit little-endian ELF without a PT_INTERP program header. */
export async function isStaticElf64(path: string): Promise<boolean> {
  const file = await open(path, 'r');
  try {
    const header = Buffer.alloc(64);
    await file.read(header, 0, 64, 0);
    const isElf64le = header.readUInt32BE(0) === 0x7f454c46 && header[4] === 2 && header[5] === 1;
    if (!isElf64le) return false;
    const phoff = Number(header.readBigUInt64LE(0x20));
    const phentsize = header.readUInt16LE(0x36);
    const phnum = header.readUInt16LE(0x38);
    if (phentsize < 4 || phnum > 256) return false;
    const table = Buffer.alloc(phentsize * phnum);
    await file.read(table, 0, table.length, phoff);
    for (let i = 0; i < phnum; i++) {
      if (table.readUInt32LE(i * phentsize) === PT_INTERP) return false;
    }
    return true;
  } finally {
    await file.close();
  }
}

export async function findStaticBusybox(candidates: readonly string[] = BUSYBOX_CANDIDATES): Promise<string> {
  const dynamic: string[] = [];
  for (const path of candidates) {
    let isStatic: boolean;
    try {
      isStatic = await isStaticElf64(path);
    } catch {
      continue; // absent or unreadable: try the next place
    }
    if (isStatic) return path;
    dynamic.push(path);
  }
  const found = dynamic.length > 0 ? ` (${dynamic.join(', ')} is dynamically linked)` : '';
  throw new VirtkitError('guestkit.missing-host-file', `no statically linked busybox found${found}: install busybox-static`, { candidates: [...candidates] });
}
