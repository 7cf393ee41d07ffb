/**
 * The QMP sequences of screens and keys: a screenshot (`screendump` to a PPM in the run dir,
 * read back and encoded as PNG), keys (`send-key`), the VNC password (`change-vnc-password`:
 * sent over QMP only, never on QEMU's command line).
 */
import { randomBytes } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { encodePng } from './png.js';
import { parsePpm } from './ppm.js';

export interface UntypedQmp {
  executeUntyped(command: string, args?: Record<string, unknown>): Promise<unknown>;
}

export interface Screenshot {
  width: number;
  height: number;
  png: Buffer;
}

/** The PPM screendump writes; QEMU runs as us and the run dir is 0700. */
export function screendumpPath(runDir: string): string {
  return join(runDir, 'screendump.ppm');
}

export async function takeScreenshot(qmp: UntypedQmp, runDir: string): Promise<Screenshot> {
  const file = screendumpPath(runDir);
  try {
    await qmp.executeUntyped('screendump', { filename: file });
    const image = parsePpm(await readFile(file));
    return { width: image.width, height: image.height, png: encodePng(image) };
  } finally {
    await rm(file, { force: true });
  }
}

export async function sendKeys(qmp: UntypedQmp, qcodes: readonly string[], holdMs?: number): Promise<void> {
  await qmp.executeUntyped('send-key', {
    keys: qcodes.map((data) => ({ type: 'qcode', data })),
    ...(holdMs !== undefined ? { 'hold-time': holdMs } : {}),
  });
}

/** VNC passwords are at most 8 characters (the protocol's DES key); letters and digits. */
export function randomVncPassword(): string {
  const alphabet = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789';
  return [...randomBytes(8)].map((b) => alphabet[b % alphabet.length]).join('');
}

export async function setVncPassword(qmp: UntypedQmp, password: string): Promise<void> {
  await qmp.executeUntyped('change-vnc-password', { password });
}
