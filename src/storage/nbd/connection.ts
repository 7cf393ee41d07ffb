import type { Duplex } from 'node:stream';
import { ByteReader, EndOfStream } from './byte-reader.js';
import type { NbdExport } from './export.js';
import { negotiate } from './negotiate.js';
import { DEFAULT_LIMITS, serveTransmission, type TransmissionLimits } from './transmission.js';

/** How a connection ended without a protocol error. */
export type ConnectionEnd = 'aborted' | 'disconnect' | 'eof';

/**
 * Serves one client on `stream` from greeting to goodbye. Resolves when the client leaves by
 * the rules; rejects with `nbd.protocol` when it breaks them, after destroying the stream.
 * Never throws anything else for anything the client sends.
 */
export async function serveConnection(stream: Duplex, exp: NbdExport, limits: TransmissionLimits = DEFAULT_LIMITS): Promise<ConnectionEnd> {
  const reader = new ByteReader(stream);
  try {
    const result = await negotiate(reader, stream, exp);
    if (result.kind === 'aborted') {
      stream.end();
      return 'aborted';
    }
    return await serveTransmission(reader, stream, exp, result.session, limits);
  } catch (err) {
    if (err instanceof EndOfStream) {
      stream.end();
      return 'eof';
    }
    stream.destroy();
    throw err;
  }
}
