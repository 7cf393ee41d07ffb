/**
 * The files of a guest's run directory (docs/argv-fixtures.md). The argv builder is the only
 * place that names them; everything else (launcher, console, attach) asks this function.
 */
import { join } from 'node:path';

export interface RunPaths {
  /** QMP, unix socket, QEMU is the server. */
  qmpSocket: string;
  /** Serial console (ttyS0), unix socket, QEMU is the server; one client at a time. */
  consoleSocket: string;
  /** Everything the guest printed on the serial console, appended by QEMU itself. */
  consoleLog: string;
  /** Written by QEMU (-pidfile). */
  pidFile: string;
  /** QEMU's stderr and stdout, redirected by the launcher. */
  qemuLog: string;
  /** VNC server, unix socket, when graphics is vnc. */
  vncSocket: string;
}

export function runPaths(runDir: string): RunPaths {
  return {
    qmpSocket: join(runDir, 'qmp.sock'),
    consoleSocket: join(runDir, 'console.sock'),
    consoleLog: join(runDir, 'console.log'),
    pidFile: join(runDir, 'qemu.pid'),
    qemuLog: join(runDir, 'qemu.log'),
    vncSocket: join(runDir, 'vnc.sock'),
  };
}
