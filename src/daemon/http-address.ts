/**
 * `--http HOST:PORT` as an address, checked before the daemon starts anything. Apart from the
 * web listener (http-listener.ts), which the daemon imports only when `--http` is given.
 */
import { VirtkitError } from '../util/errors.js';

export interface HttpAddress {
  host: string;
  port: number;
}

const LoopbackHosts = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

/**
 * `HOST:PORT` of `--http`. Loopback only: the token travels in clear text, so another address
 * waits for TLS. PORT 0 picks a free port (`virtkit ui` finds it).
 */
export function parseHttpAddress(text: string): HttpAddress {
  const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(text.trim());
  if (!m) {
    throw new VirtkitError('argument.invalid', `--http: expected HOST:PORT such as 127.0.0.1:8006, got "${text}"`, { option: '--http', value: text });
  }
  const host = m[1]!;
  const port = Number(m[2]);
  if (port > 65535) throw new VirtkitError('argument.invalid', `--http: port ${port} is above 65535`, { option: '--http', value: text });
  if (!LoopbackHosts.has(host)) {
    throw new VirtkitError('argument.invalid',
      `--http: ${host} is not a loopback address; the web listener serves 127.0.0.1, ::1 or localhost only until it speaks TLS`,
      { option: '--http', value: text });
  }
  return { host: host === 'localhost' ? '127.0.0.1' : host.replace(/^\[|\]$/g, ''), port };
}
