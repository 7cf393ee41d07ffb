/**
 * The web listener's credential and where `virtkit ui` finds it (docs/web.md):
 * - STATE_DIR/http-token: 32 random bytes, base64url; made once and kept, so a page stays
 *   signed in across daemon restarts (delete the file to rotate it). Mode 0600: whoever can
 *   read it holds admin over HTTP, exactly as whoever can read the state dir holds it anyway.
 * - STATE_DIR/http.json: `{ url, pid }` of the listener while it runs, so `virtkit ui` can
 *   tell "no listener" from "listening on PORT".
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openPrivateFile } from './state-modes.js';

export const TokenFile = 'http-token';
export const ListenerFile = 'http.json';

/** What `STATE_DIR/http.json` holds. */
export interface ListenerRecord {
  /** `http://127.0.0.1:PORT` */
  url: string;
  pid: number;
}

/** Token characters: base64url, so it fits a WebSocket subprotocol name and a URL fragment. */
const TokenShape = /^[A-Za-z0-9_-]{32,128}$/;

/** The state dir's token, made (0600) on first use. */
export async function loadOrCreateToken(stateDir: string): Promise<string> {
  const path = join(stateDir, TokenFile);
  try {
    const text = readFileSync(path, 'utf8').trim();
    if (TokenShape.test(text)) return text;
  } catch {
    // Not there yet: made below.
  }
  const token = randomBytes(32).toString('base64url');
  openPrivateFile(path);
  await writeFile(path, `${token}\n`, { mode: 0o600 });
  return token;
}

export async function writeListenerRecord(stateDir: string, rec: ListenerRecord): Promise<void> {
  const path = join(stateDir, ListenerFile);
  openPrivateFile(path);
  await writeFile(path, `${JSON.stringify(rec)}\n`, { mode: 0o600 });
}

export async function removeListenerRecord(stateDir: string): Promise<void> {
  await rm(join(stateDir, ListenerFile), { force: true });
}

/** Compares in constant time, so the token cannot be guessed a byte at a time. */
export function tokenMatches(expected: string, given: string | undefined): boolean {
  if (given === undefined) return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The prefix of the WebSocket subprotocol that carries the token (browsers cannot set headers on a WebSocket). */
export const TokenProtocolPrefix = 'virtkit-token.';
