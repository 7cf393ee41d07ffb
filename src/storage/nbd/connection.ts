import type { Duplex } from 'node:stream';
import { VirtkitError } from '../../util/errors.js';
import { ByteReader, EndOfStream } from './byte-reader.js';
import type { NbdExport } from './export.js';
import { negotiate } from './negotiate.js';
import { DEFAULT_LIMITS, serveTransmission, type TransmissionLimits } from './transmission.js';

/** How a connection ended without a protocol error. */
export type ConnectionEnd = 'aborted' | 'disconnect' | 'eof';

export interface ConnectionOptions {
  readonly limits?: TransmissionLimits;
  /**
   * Time a client gets to finish option haggling (default 10 s, as qemu-nbd). Without it, one
   * client that connects and says nothing would hold a `--shared 1` server forever.
   */
  readonly handshakeTimeoutMs?: number;
}

export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;

/**
 * Serves one client on `stream` from greeting to goodbye. Resolves when the client leaves by
 * the rules; rejects with `nbd.protocol` when it breaks them or stalls in the handshake, after
 * destroying the stream. Never throws anything else for anything the client sends.
 */
export async function serveConnection(stream: Duplex, exp: NbdExport, opts: ConnectionOptions = {}): Promise<ConnectionEnd> {
  const reader = new ByteReader(stream);
  const timeoutMs = opts.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    stream.destroy();
  }, timeoutMs);
  try {
    const result = await negotiate(reader, stream, exp).finally(() => clearTimeout(timer));
    if (result.kind === 'aborted') {
      stream.end();
      return 'aborted';
    }
    return await serveTransmission(reader, stream, exp, result.session, opts.limits ?? DEFAULT_LIMITS);
  } catch (err) {
    if (timedOut) {
      throw new VirtkitError('nbd.protocol', `client did not finish the handshake within ${timeoutMs} ms`,
        { timeoutMs }, { cause: err });
    }
    if (err instanceof EndOfStream) {
      stream.end();
      return 'eof';
    }
    stream.destroy();
    throw err;
  }
}
