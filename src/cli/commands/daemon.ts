/** `virtkit daemon` (also installed as `virtkitd`): runs the manager in the foreground. */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { runDaemon } from '../../daemon/index.js';

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
    .action(async (o: { stateDir?: string; runDir?: string; socketGroup?: string; adminGroup?: string; logFile?: string; logLevel: string; qemu?: string }) => {
      await runDaemon({
        ...(o.stateDir ? { stateDir: resolve(o.stateDir) } : {}),
        ...(o.runDir ? { runDir: resolve(o.runDir) } : {}),
        ...(o.socketGroup ? { socketGroup: o.socketGroup } : {}),
        ...(o.adminGroup ? { adminGroup: o.adminGroup } : {}),
        ...(o.logFile ? { logFile: o.logFile } : {}),
        ...(o.qemu ? { qemuBinary: o.qemu } : {}),
        logLevel: o.logLevel,
      });
    });
}
