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
 * (without its newline; empty lines are skipped). A line longer than the bound is never
 * kept: with `tooLong`, that is called once for it, the rest of the line is skipped as it
 * arrives and the lines after it are read again; without, the splitter stops and `push`
 * returns false from then on.
 */
export class LineSplitter {
  private partial = '';
  private skipping = false;
  private stopped = false;

  constructor(
    private readonly maxChars: number,
    private readonly line: (text: string) => void,
    private readonly tooLong?: () => void,
  ) {}

  /** The splitter stopped at an over-long line (only without `tooLong`). */
  get overflow(): boolean { return this.stopped; }

  /** Characters of an unfinished line kept (the memory bound). */
  get pendingChars(): number { return this.partial.length; }

  push(chunk: string): boolean {
    let start = 0;
    while (!this.stopped) {
      const nl = chunk.indexOf('\n', start);
      if (nl === -1) {
        this.keep(chunk.slice(start));
        break;
      }
      if (this.skipping) {
        this.skipping = false;
      } else if (this.partial.length + nl - start > this.maxChars) {
        this.refuse();
      } else {
        const text = this.partial.length > 0 ? this.partial + chunk.slice(start, nl) : chunk.slice(start, nl);
        this.partial = '';
        if (text.length > 0) this.line(text);
      }
      start = nl + 1;
    }
    return !this.stopped;
  }

  private keep(rest: string): void {
    if (rest.length === 0 || this.skipping) return;
    if (this.partial.length + rest.length > this.maxChars) {
      this.refuse();
      // The line goes on past this chunk: skip up to its end.
      this.skipping = !this.stopped;
      return;
    }
    this.partial += rest;
  }

  private refuse(): void {
    this.partial = '';
    if (this.tooLong) this.tooLong();
    else this.stopped = true;
  }
}
