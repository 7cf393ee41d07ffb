/**
 * The graphical console for noVNC: a WebSocket at `/domains/NAME/vnc` on the web listener,
 * bridged byte for byte to the guest's VNC server on its run directory's `vnc.sock`
 * (`graphics: vnc`). QEMU never listens on a TCP port; the token guards the WebSocket.
 */
import type { IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { existsSync } from 'node:fs';
import { WebSocketServer, type WebSocket } from 'ws';
import { runPaths } from '../qemu/index.js';
import { VirtkitError } from '../util/errors.js';
import { TokenProtocolPrefix } from './web-token.js';

export const VncRoute = /^\/domains\/([^/]+)\/vnc$/;

/** The VNC socket of a running guest with `graphics: vnc`; throws domain.invalid-state otherwise. */
export function vncSocketPath(name: string, runDirOf: (name: string) => string | undefined): string {
  const runDir = runDirOf(name);
  if (runDir === undefined) throw new VirtkitError('domain.invalid-state', `domain "${name}" is not running`, { name });
  const path = runPaths(runDir).vncSocket;
  if (!existsSync(path)) {
    throw new VirtkitError('domain.invalid-state', `domain "${name}" has no graphical console (its definition needs graphics: vnc)`, { name });
  }
  return path;
}

/** Bridges upgraded WebSockets to VNC unix sockets. */
export class VncBridge {
  private readonly wss = new WebSocketServer({
    noServer: true,
    maxPayload: 1024 * 1024,
    // noVNC asks for 'binary'; the token's own protocol is never chosen (it would echo the token).
    handleProtocols: (protocols) => [...protocols].find((p) => !p.startsWith(TokenProtocolPrefix)) ?? false,
  });

  accept(req: IncomingMessage, socket: Duplex, head: Buffer, vncPath: string): void {
    const vnc = connect(vncPath);
    vnc.once('error', () => socket.destroy());
    vnc.once('connect', () => {
      if (socket.destroyed) { vnc.destroy(); return; }
      this.wss.handleUpgrade(req, socket, head, (ws) => bridge(ws, vnc));
    });
  }

  /** Closes every bridged console (daemon stopping). */
  close(): void {
    for (const ws of this.wss.clients) ws.close(1001, 'daemon stopping');
    this.wss.close();
  }
}

function bridge(ws: WebSocket, vnc: Socket): void {
  ws.on('message', (data: Buffer | ArrayBuffer | Buffer[]) => {
    const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
    // Backpressure both ways: a slow side pauses the other instead of buffering without bound.
    if (!vnc.write(bytes)) ws.pause();
  });
  vnc.on('drain', () => ws.resume());
  vnc.on('data', (chunk: Buffer) => {
    ws.send(chunk, { binary: true });
    if (ws.bufferedAmount > 4 * 1024 * 1024) {
      vnc.pause();
      const resumeWhenDrained = (): void => {
        if (ws.readyState !== ws.OPEN) return;
        if (ws.bufferedAmount < 1024 * 1024) vnc.resume();
        else setTimeout(resumeWhenDrained, 20);
      };
      setTimeout(resumeWhenDrained, 20);
    }
  });
  ws.on('close', () => vnc.destroy());
  ws.on('error', () => vnc.destroy());
  vnc.on('close', () => ws.close(1000, 'VNC server closed'));
  vnc.on('error', () => ws.terminate());
}
