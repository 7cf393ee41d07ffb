/**
 * The graphical console: noVNC over the daemon's WebSocket bridge to the guest's vnc.sock.
 * noVNC is loaded only when this view opens (its own chunk: the page's weight stays small).
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { client } from '../session';

interface RfbLike {
  scaleViewport: boolean;
  resizeSession: boolean;
  disconnect(): void;
  sendCtrlAltDel(): void;
  addEventListener(type: string, fn: (ev: { detail?: { clean?: boolean; reason?: string } }) => void): void;
}

export function VncConsole({ name }: { name: string }) {
  const box = useRef<HTMLDivElement>(null);
  const rfb = useRef<RfbLike>();
  const [status, setStatus] = useState('connecting');
  useEffect(() => {
    let stopped = false;
    let retry: ReturnType<typeof setTimeout> | undefined;
    const connect = async (): Promise<void> => {
      const { default: RFB } = await import('@novnc/novnc') as unknown as { default: new (el: HTMLElement, url: string, opts: object) => RfbLike };
      if (stopped) return;
      const { url, protocols } = client.vncSocket(name);
      const r = new RFB(box.current!, url, { wsProtocols: protocols });
      r.scaleViewport = true;
      rfb.current = r;
      r.addEventListener('connect', () => setStatus('connected'));
      r.addEventListener('disconnect', (ev) => {
        if (stopped) return;
        setStatus(ev.detail?.clean ? 'disconnected; reconnecting' : 'cannot connect (is the guest running with graphics: vnc?); retrying');
        retry = setTimeout(() => void connect(), 2000);
      });
    };
    void connect();
    return () => {
      stopped = true;
      clearTimeout(retry);
      rfb.current?.disconnect();
    };
  }, [name]);
  return (
    <div class="vnc">
      <div class="toolbar">
        <span aria-live="polite" data-testid="vnc-status">Graphical console: {status}</span>
        <button type="button" onClick={() => rfb.current?.sendCtrlAltDel()}>Send Ctrl+Alt+Del</button>
      </div>
      <div class="vnc-box" ref={box} data-testid="vnc" />
    </div>
  );
}
