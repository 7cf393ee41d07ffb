/**
 * The web manager's built files (`dist/web/`, made by `npm run build`), served by the web
 * listener with the security headers of docs/web.md. Only the page and its hashed assets are
 * public: they are code, not data; everything the page shows comes through the API with the token.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const ContentTypes: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
  '.json': 'application/json',
};

/**
 * Where the built page is: `dist/web` beside the compiled daemon (`dist/src/daemon` -> `dist/web`),
 * or under the checkout's `dist/` when the daemon runs from source (tests).
 */
export function defaultWebRoot(): string {
  const here = fileURLToPath(new URL('../../', import.meta.url));
  const candidates = [join(here, 'web'), join(here, 'dist', 'web')];
  return candidates.find((dir) => existsSync(join(dir, 'index.html'))) ?? candidates[0]!;
}

/** The paths served without a token: the page itself and its assets. */
export function isStaticPath(pathname: string): boolean {
  return pathname === '/' || pathname === '/index.html' || pathname.startsWith('/assets/') || pathname === '/favicon.svg';
}

/**
 * The page's Content-Security-Policy: scripts only from this origin (no inline script, no
 * eval), connections only back to it (fetch and WebSockets). Styles allow inline because
 * xterm.js and noVNC set their own at run time; no script can come in through them.
 */
export function contentSecurityPolicy(host: string): string {
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self' data:",
    `connect-src 'self' ws://${host}`,
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

export class StaticFiles {
  private readonly cache = new Map<string, Buffer>();

  constructor(readonly root: string) {}

  /** Answers a GET/HEAD of a static path; false when there is no such file. */
  async serve(pathname: string, res: ServerResponse, host: string, head: boolean): Promise<boolean> {
    const rel = pathname === '/' ? 'index.html' : pathname.slice(1);
    const file = normalize(join(this.root, rel));
    if (!file.startsWith(this.root + sep)) return false;
    let body = this.cache.get(file);
    if (!body) {
      try {
        body = await readFile(file);
      } catch {
        return false;
      }
      this.cache.set(file, body);
    }
    const hashed = rel.startsWith('assets/');
    res.writeHead(200, {
      'content-type': ContentTypes[extname(file)] ?? 'application/octet-stream',
      'content-length': String(body.length),
      // Asset names carry a content hash; the page itself must be fresh after an upgrade.
      'cache-control': hashed ? 'public, max-age=31536000, immutable' : 'no-cache',
      'content-security-policy': contentSecurityPolicy(host),
    });
    res.end(head ? undefined : body);
    return true;
  }
}
