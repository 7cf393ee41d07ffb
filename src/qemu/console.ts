import { connect, type Socket } from 'node:net';
import { VirtkitError } from '../util/errors.js';
import { runPaths } from './command/run-paths.js';

/**
 * Connects to the serial console of the guest in `runDir` (QEMU's console.sock). QEMU serves
 * one client at a time: the owner of the guest holds it. Throws 'process.not-running'.
 */
export function openConsole(runDir: string): Promise<Socket> {
  const path = runPaths(runDir).consoleSocket;
  return new Promise((resolve, reject) => {
    const sock = connect(path);
    sock.once('connect', () => {
      sock.off('error', onError);
      resolve(sock);
    });
    const onError = (err: Error): void =>
      reject(new VirtkitError('process.not-running', `cannot open the console ${path}: ${err.message}`, { path }, { cause: err }));
    sock.once('error', onError);
  });
}

/**
 * Watches a console stream for `marker` (which may arrive split across chunks). `found`
 * resolves the first time it appears; `dispose` stops watching.
 */
export function watchConsoleFor(stream: NodeJS.ReadableStream, marker: string): { found: Promise<void>; dispose: () => void } {
  let tail = '';
  let onData: (chunk: Buffer | string) => void = () => undefined;
  const found = new Promise<void>((resolve) => {
    onData = (chunk) => {
      const text = tail + (typeof chunk === 'string' ? chunk : chunk.toString('latin1'));
      if (text.includes(marker)) {
        stream.off('data', onData);
        resolve();
      }
      tail = text.slice(-(marker.length - 1));
    };
    stream.on('data', onData);
  });
  return { found, dispose: () => stream.off('data', onData) };
}
