import { join } from 'node:path';

/** The files of a guest's run directory (see docs/qemu-driver.md). */
export interface RunPaths {
  qmp: string;
  console: string;
  consoleLog: string;
  pid: string;
  log: string;
}

export function runPaths(runDir: string): RunPaths {
  return {
    qmp: join(runDir, 'qmp.sock'),
    console: join(runDir, 'console.sock'),
    consoleLog: join(runDir, 'console.log'),
    pid: join(runDir, 'qemu.pid'),
    log: join(runDir, 'qemu.log'),
  };
}
