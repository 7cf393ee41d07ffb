/** `virtkit daemon` (also installed as `virtkitd`): runs the manager in the foreground. */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { DefaultConnectionLimits, runDaemon, type ConnectionLimits } from '../../daemon/index.js';
import { timeoutOption, wholeNumberOption } from '../options.js';

const Connections = { min: 1, max: 1_000_000 };
const Defaults = DefaultConnectionLimits;

interface LimitFlags {
  idleTimeout?: number;
  headersTimeout?: number;
  maxUserConnections?: number;
  maxOwnerConnections?: number;
  maxConnections?: number;
}

/** The connection limits given on the command line (docs/api.md, "Limits"); the rest keep their defaults. */
function limitsOf(o: LimitFlags): Partial<ConnectionLimits> {
  return {
    ...(o.idleTimeout !== undefined ? { idleTimeoutMs: Math.round(o.idleTimeout * 1000) } : {}),
    ...(o.headersTimeout !== undefined ? { headersTimeoutMs: Math.round(o.headersTimeout * 1000) } : {}),
    ...(o.maxUserConnections !== undefined ? { maxUserConnections: o.maxUserConnections } : {}),
    ...(o.maxOwnerConnections !== undefined ? { maxOwnerConnections: o.maxOwnerConnections } : {}),
    ...(o.maxConnections !== undefined ? { maxConnections: o.maxConnections } : {}),
  };
}

export function register(program: Command): void {
  program.command('daemon')
    .description('run the manager: REST API on STATE_DIR/virtkit.sock; guests outlive it')
    .option('--state-dir <dir>', 'state directory (default: /var/lib/virtkit as root, else $XDG_STATE_HOME/virtkit)')
    .option('--run-dir <dir>', 'parent of the guests\' run directories (default: /run/virtkit as root, STATE_DIR/run with --state-dir, else $XDG_RUNTIME_DIR/virtkit)')
    .option('--socket-group <group>', 'let this group connect (state dir 0750, socket 0660); its members may read and write, not admin')
    .option('--admin-group <group>', 'members of this group also hold admin (root-equivalent: raw QEMU arguments, monitor, host-shutdown, snoop, pools)')
    .option('--log-file <path>', 'structured log file, "-" for stderr (default: STATE_DIR/daemon.log)')
    .option('--log-level <level>', 'trace, debug, info, warn, error', 'info')
    .option('--qemu <binary>', 'QEMU binary (default: qemu-system-x86_64 on PATH)')
    .option('--http <host:port>', 'also serve the web manager and the API on loopback TCP, with a token (127.0.0.1:PORT; virtkit ui opens it)')
    .addOption(timeoutOption(`close a connection with nothing in progress after this long without traffic (default ${Defaults.idleTimeoutMs / 1000})`, '--idle-timeout <seconds>'))
    .addOption(timeoutOption(`a request's headers must arrive within this (default ${Defaults.headersTimeoutMs / 1000})`, '--headers-timeout <seconds>'))
    .addOption(wholeNumberOption('--max-user-connections <n>', `connections each uid other than root and the daemon's own may hold (default ${Defaults.maxUserConnections})`, Connections))
    .addOption(wholeNumberOption('--max-owner-connections <n>', `connections root and the daemon's own uid may each hold (default ${Defaults.maxOwnerConnections})`, Connections))
    .addOption(wholeNumberOption('--max-connections <n>', `connections in all, kept below the open-files limit (default ${Defaults.maxConnections})`, Connections))
    .action(async (o: { stateDir?: string; runDir?: string; socketGroup?: string; adminGroup?: string; logFile?: string; logLevel: string; qemu?: string; http?: string } & LimitFlags) => {
      await runDaemon({
        ...(o.stateDir ? { stateDir: resolve(o.stateDir) } : {}),
        ...(o.runDir ? { runDir: resolve(o.runDir) } : {}),
        ...(o.socketGroup ? { socketGroup: o.socketGroup } : {}),
        ...(o.adminGroup ? { adminGroup: o.adminGroup } : {}),
        ...(o.logFile ? { logFile: o.logFile } : {}),
        ...(o.qemu ? { qemuBinary: o.qemu } : {}),
        ...(o.http ? { http: o.http } : {}),
        logLevel: o.logLevel,
        limits: limitsOf(o),
      });
    });
}
