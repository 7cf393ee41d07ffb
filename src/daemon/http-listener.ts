/**
 * The web listener (`virtkit daemon --http 127.0.0.1:PORT`, docs/web.md): the web manager's
 * page and the whole API over loopback TCP, for a browser.
 *
 * The token is the credential. A request carries it in `Authorization: Bearer TOKEN` or
 * `X-Virtkit-Token`; a WebSocket, whose headers a browser cannot set, as the subprotocol
 * `virtkit-token.TOKEN`. With it, the request is passed to the daemon's own unix socket, so it
 * meets the same routes, schemas, preconditions and streams as the CLI's, as the daemon's
 * own user: the token holds the admin class. Without it: 401, `access.unauthenticated`.
 *
 * Against other web pages: the Host header must name this listener (no DNS rebinding), an
 * Origin, when sent, must be this listener's (no cross-site WebSocket), and no cookie is ever
 * read, so a cross-site form cannot act with the user's credential (CSRF).
 */
import { createServer, request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import type { Duplex } from 'node:stream';
import { httpStatusOf } from '../api/index.js';
import { VirtkitError, errorMessage, isVirtkitError } from '../util/errors.js';
import type { HttpAddress } from './http-address.js';
import { StaticFiles, defaultWebRoot, isStaticPath } from './web-static.js';
import { TokenProtocolPrefix, loadOrCreateToken, removeListenerRecord, tokenMatches, writeListenerRecord } from './web-token.js';
import { VncBridge, VncRoute, vncSocketPath } from './web-vnc.js';

export { parseHttpAddress, type HttpAddress } from './http-address.js';

export interface HttpListenerOptions {
  address: HttpAddress;
  /** The daemon's unix socket: every API request goes there. */
  socketPath: string;
  /** Holds http-token and http.json. */
  stateDir: string;
  /** The run directory of a running guest (for its vnc.sock); undefined when it does not run. */
  runDirOf: (name: string) => string | undefined;
  /** The built page; default dist/web. */
  webRoot?: string;
  log: { info(fields: object, msg: string): void };
}

export interface HttpListener {
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  readonly port: number;
  readonly token: string;
  close(): Promise<void>;
}

/** Headers a browser sends that the daemon's socket must not see (they are this listener's business). */
const DroppedRequestHeaders = new Set(['authorization', 'x-virtkit-token', 'cookie', 'origin', 'referer', 'host']);

function errorBody(err: VirtkitError): string {
  return JSON.stringify({ error: err.toJSON() });
}

/** The security headers on every answer of the listener. */
const SecurityHeaders: OutgoingHttpHeaders = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
};

function sendError(res: ServerResponse, err: unknown): void {
  const e = isVirtkitError(err) ? err : new VirtkitError('internal', errorMessage(err));
  if (res.headersSent) { res.destroy(); return; }
  const body = errorBody(e);
  res.writeHead(httpStatusOf(e.code), {
    ...SecurityHeaders,
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    ...(e.code === 'access.unauthenticated' ? { 'www-authenticate': 'Bearer realm="virtkit"' } : {}),
  });
  res.end(body);
}

function refuseUpgrade(socket: Duplex, err: unknown): void {
  if (socket.destroyed) return;
  const e = isVirtkitError(err) ? err : new VirtkitError('internal', errorMessage(err));
  const body = errorBody(e);
  const status = httpStatusOf(e.code);
  socket.end(`HTTP/1.1 ${status} ${status === 401 ? 'Unauthorized' : 'Refused'}\r\ncontent-type: application/json\r\n`
    + `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
}

export async function startHttpListener(opts: HttpListenerOptions): Promise<HttpListener> {
  const token = await loadOrCreateToken(opts.stateDir);
  const files = new StaticFiles(opts.webRoot ?? defaultWebRoot());
  const vnc = new VncBridge();
  let port = opts.address.port;

  /** The Host values that name this listener. */
  const ownHosts = (): Set<string> => new Set([`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`]);

  /** Refuses requests meant for another site: a foreign Host (DNS rebinding) or Origin. */
  const checkSite = (req: IncomingMessage): string => {
    const host = req.headers.host ?? '';
    if (!ownHosts().has(host)) {
      throw new VirtkitError('access.denied', `Host "${host}" does not name this listener (127.0.0.1:${port})`, { host });
    }
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== `http://${host}`) {
      throw new VirtkitError('access.denied', `Origin "${origin}" is not this listener's (http://${host})`, { origin });
    }
    return host;
  };

  const checkToken = (given: string | undefined): void => {
    if (tokenMatches(token, given)) return;
    throw new VirtkitError('access.unauthenticated', given === undefined
      ? 'no token: send Authorization: Bearer TOKEN (virtkit ui prints a URL that carries it)'
      : 'the token is not this daemon\'s (virtkit ui prints the current one)');
  };

  const tokenOfRequest = (req: IncomingMessage): string | undefined => {
    const auth = req.headers.authorization;
    if (auth?.startsWith('Bearer ')) return auth.slice('Bearer '.length).trim();
    const header = req.headers['x-virtkit-token'];
    return typeof header === 'string' ? header : undefined;
  };

  const protocolsOf = (req: IncomingMessage): string[] =>
    (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim()).filter((p) => p !== '');

  const forwardedHeaders = (req: IncomingMessage): OutgoingHttpHeaders => {
    const headers: OutgoingHttpHeaders = {};
    for (const [key, value] of Object.entries(req.headers)) {
      if (!DroppedRequestHeaders.has(key) && value !== undefined) headers[key] = value;
    }
    headers.host = 'localhost';
    return headers;
  };

  const proxy = (req: IncomingMessage, res: ServerResponse): void => {
    const upstream = httpRequest({ socketPath: opts.socketPath, method: req.method, path: req.url, headers: forwardedHeaders(req) }, (up) => {
      res.writeHead(up.statusCode ?? 502, { ...up.headers, ...SecurityHeaders, 'cache-control': 'no-store' });
      up.pipe(res);
      up.on('error', () => res.destroy());
    });
    upstream.on('error', (err) => sendError(res, new VirtkitError('connection.failed', `the daemon's socket: ${err.message}`)));
    // A client that goes away ends the upstream request too (an event stream, a download).
    res.on('close', () => { if (!res.writableFinished) upstream.destroy(); });
    req.pipe(upstream);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const host = checkSite(req);
    const pathname = (req.url ?? '/').split('?')[0] ?? '/';
    const given = tokenOfRequest(req);
    // `GET /` is both the page (a browser navigating: no token header) and daemon.info (a client: with it).
    if ((req.method === 'GET' || req.method === 'HEAD') && isStaticPath(pathname) && given === undefined) {
      res.setHeader('x-content-type-options', 'nosniff');
      res.setHeader('referrer-policy', 'no-referrer');
      res.setHeader('x-frame-options', 'DENY');
      if (await files.serve(pathname, res, host, req.method === 'HEAD')) return;
      throw new VirtkitError('request.invalid', pathname === '/' || pathname === '/index.html'
        ? 'the web manager is not built (npm run build makes dist/web)'
        : `no such file: ${pathname}`);
    }
    checkToken(given);
    proxy(req, res);
  };

  const upgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    checkSite(req);
    const protocols = protocolsOf(req);
    const fromProtocol = protocols.find((p) => p.startsWith(TokenProtocolPrefix))?.slice(TokenProtocolPrefix.length);
    checkToken(fromProtocol ?? tokenOfRequest(req));
    const url = new URL(req.url ?? '/', 'http://virtkit');
    const vncName = VncRoute.exec(url.pathname)?.[1];
    if (vncName !== undefined) {
      vnc.accept(req, socket, head, vncSocketPath(decodeURIComponent(vncName), opts.runDirOf));
      return;
    }
    // Any other WebSocket (events, console) is the daemon's: the handshake is replayed on its
    // socket without the token, then the two sockets are joined.
    const upstream = connect(opts.socketPath);
    const rest = protocols.filter((p) => !p.startsWith(TokenProtocolPrefix));
    const headers = forwardedHeaders(req);
    delete headers['sec-websocket-protocol'];
    if (rest.length > 0) headers['sec-websocket-protocol'] = rest.join(', ');
    const lines = [`${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/1.1`];
    for (const [key, value] of Object.entries(headers)) {
      for (const v of Array.isArray(value) ? value : [value]) lines.push(`${key}: ${String(v)}`);
    }
    upstream.once('connect', () => {
      upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (head.length > 0) upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
    upstream.on('error', (err) => refuseUpgrade(socket, new VirtkitError('connection.failed', `the daemon's socket: ${err.message}`)));
    socket.on('error', () => upstream.destroy());
    socket.on('close', () => upstream.destroy());
    upstream.on('close', () => socket.destroy());
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => sendError(res, err));
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    try {
      upgrade(req, socket, head);
    } catch (err) {
      refuseUpgrade(socket, err);
    }
  });
  server.on('clientError', (_err, socket) => socket.destroy());
  // Upgraded sockets are no longer the server's; they are tracked to close them on stop.
  const sockets = new Set<Duplex>();
  server.on('connection', (s: Duplex) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(new VirtkitError('argument.invalid',
      `--http: cannot listen on ${opts.address.host}:${opts.address.port}: ${err.code === 'EADDRINUSE' ? 'the port is in use' : err.message}`,
      { option: '--http', errno: err.code ?? null })));
    server.listen(opts.address.port, opts.address.host, () => resolve());
  });
  const bound = server.address();
  port = typeof bound === 'object' && bound !== null ? bound.port : opts.address.port;
  const host = opts.address.host.includes(':') ? `[${opts.address.host}]` : opts.address.host;
  const url = `http://${host}:${port}`;
  await writeListenerRecord(opts.stateDir, { url, pid: process.pid });
  opts.log.info({ url }, 'web listener up (loopback, token: STATE_DIR/http-token)');

  let closing: Promise<void> | undefined;
  return {
    url, port, token,
    close: () => (closing ??= (async () => {
      vnc.close();
      await removeListenerRecord(opts.stateDir);
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await closed;
    })()),
  };
}
