/**
 * The serial console in xterm.js over the console WebSocket: the history first (scrollback),
 * then live output; keys go to the guest. Fits the terminal to its box on resize; copy with
 * the selection, paste with the browser's paste. When the socket closes (a daemon restart, a
 * guest that stops) it says so and tries again every 2 s while the view is open.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { Terminal } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import '@xterm/xterm/css/xterm.css';
import type { ConsoleConnection } from 'virtkit/client/browser';
import { client } from '../session';
import { shownError } from './errors';

export function SerialConsole({ name }: { name: string }) {
  const box = useRef<HTMLDivElement>(null);
  const [status, setStatus] = useState('connecting');
  useEffect(() => {
    const dark = matchMedia('(prefers-color-scheme: dark)').matches;
    const term = new Terminal({
      convertEol: false, scrollback: 5000, cursorBlink: true, fontSize: 14,
      theme: dark ? { background: '#111418', foreground: '#e6e6e6' } : { background: '#fbfbfb', foreground: '#1a1a1a', cursor: '#1a1a1a', selectionBackground: '#b5d5ff' },
    });
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.open(box.current!);
    fit.fit();
    const observer = new ResizeObserver(() => fit.fit());
    observer.observe(box.current!);
    let con: ConsoleConnection | undefined;
    let stopped = false;
    let retry: ReturnType<typeof setTimeout> | undefined;
    const input = term.onData((data) => con?.send(data));
    const connect = async (first: boolean): Promise<void> => {
      try {
        con = await client.openConsole(name, 'write', { history: true });
        // The history replays what the guest printed; clear what an earlier attach showed.
        if (!first) term.reset();
        setStatus('connected');
        term.focus();
        for await (const bytes of con.output) term.write(bytes);
        const { code, reason } = await con.closed;
        if (!stopped) setStatus(`closed (${code}${reason ? `: ${reason}` : ''}); reconnecting`);
      } catch (err) {
        if (!stopped) setStatus(`${shownError(err).message}; retrying`);
      }
      if (!stopped) retry = setTimeout(() => void connect(false), 2000);
    };
    void connect(true);
    return () => {
      stopped = true;
      clearTimeout(retry);
      input.dispose();
      con?.close();
      observer.disconnect();
      term.dispose();
    };
  }, [name]);
  return (
    <div class="console">
      <div class="console-status" aria-live="polite" data-status={status.split(' ')[0]}>Serial console: {status}</div>
      <div class="terminal-box" ref={box} data-testid="xterm" />
    </div>
  );
}
