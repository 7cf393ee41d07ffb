/**
 * The RPC channel of the daemon's socket (docs/api.md, "The RPC channel"): after
 * `GET /v1/rpc` with `Upgrade: virtkit-rpc` is answered `101 Switching Protocols`, both sides
 * exchange newline-delimited JSON frames on the same connection, several calls in flight:
 *
 *   → {"id": 7, "method": "domain.info", "params": {"name": "web"}}
 *   ← {"id": 7, "result": {...}}            or   {"id": 7, "error": {code, message, data}}
 *
 * The same method table, handlers, access classes, audit, validation and errors as the REST
 * routes. Platform-free (no `node:` imports): the Node client and the daemon share it.
 */

export const RpcPath = '/v1/rpc';
/** The `Upgrade` header's token. */
export const RpcProtocol = 'virtkit-rpc';

/**
 * The longest frame either side accepts, in UTF-16 code units of its line (at most 3 bytes of
 * UTF-8 each): a request frame holds at most a request body (1 MiB) and its envelope. A longer
 * line is answered `request.too-large` and the connection is closed.
 */
export const MaxRpcFrameChars = 1024 * 1024 + 64 * 1024;

/** A frame's id: the caller's own number or string, echoed in the answer. */
export type RpcId = number | string;

export interface RpcRequestFrame {
  id: RpcId;
  method: string;
  params?: Record<string, unknown>;
  query?: Record<string, unknown>;
  body?: unknown;
}

export interface RpcErrorBody {
  code: string;
  message: string;
  data?: Record<string, unknown>;
}

/** An answer: `id` is null when the request frame could not be read far enough to know it. */
export type RpcReplyFrame =
  | { id: RpcId | null; result: unknown }
  | { id: RpcId | null; error: RpcErrorBody };

/**
 * Cuts a text stream into lines (frames) without holding more than `maxChars` of an
 * unfinished one. Feed it decoded text as it arrives; it calls `line` for each complete line
 * (without its newline; empty lines are skipped) and returns false once a line grew past the
 * bound, after which it takes nothing more.
 */
export class LineSplitter {
  private partial = '';
  private overflowed = false;

  constructor(private readonly maxChars: number, private readonly line: (text: string) => void) {}

  get overflow(): boolean { return this.overflowed; }

  /** Bytes of an unfinished line kept (memory bound check). */
  get pendingChars(): number { return this.partial.length; }

  push(chunk: string): boolean {
    if (this.overflowed) return false;
    let start = 0;
    let nl = chunk.indexOf('\n');
    if (nl === -1) return this.keep(chunk);
    // The first line completes what the previous chunks left.
    const first = this.partial.length > 0 ? this.partial + chunk.slice(0, nl) : chunk.slice(0, nl);
    this.partial = '';
    if (first.length > this.maxChars) return this.fail();
    if (first.length > 0) this.line(first);
    start = nl + 1;
    while ((nl = chunk.indexOf('\n', start)) !== -1) {
      if (nl - start > this.maxChars) return this.fail();
      if (nl > start) this.line(chunk.slice(start, nl));
      start = nl + 1;
    }
    return this.keep(chunk.slice(start));
  }

  private keep(rest: string): boolean {
    if (rest.length === 0) return true;
    if (this.partial.length + rest.length > this.maxChars) return this.fail();
    this.partial += rest;
    return true;
  }

  private fail(): boolean {
    this.overflowed = true;
    this.partial = '';
    return false;
  }
}
