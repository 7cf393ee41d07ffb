/**
 * What every manager verb shares: the `-c/--connect SOCKET` option (or VIRTKIT_CONNECT), a
 * client built from it, and output helpers for `--json` and human tables.
 */
import type { Command } from 'commander';
import { connect, type VirtkitClient } from '../../client/index.js';

export interface ConnectOpts {
  connect?: string;
}

export function withConnect(cmd: Command): Command {
  return cmd.option('-c, --connect <socket>', 'daemon socket (default: $VIRTKIT_CONNECT, else the default state dir\'s virtkit.sock)');
}

/** Runs `fn` with a client for the daemon named by the options, closing it afterwards. */
export async function withClient<T>(opts: ConnectOpts, fn: (c: VirtkitClient) => Promise<T>): Promise<T> {
  const client = connect(opts.connect);
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Left-aligned columns with a header row and a rule, virsh style. */
export function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => ` ${cells.map((c, i) => c.padEnd(widths[i]!)).join('   ')}`.trimEnd();
  process.stdout.write(`${line(header)}\n${'-'.repeat(line(header).length + 2)}\n`);
  for (const r of rows) process.stdout.write(`${line(r)}\n`);
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1 && v % 1024 === 0) { v /= 1024; u++; }
  return `${v} ${units[u]}`;
}
