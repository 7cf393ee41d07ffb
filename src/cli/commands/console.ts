/**
 * `virtkit console NAME`: the guest's serial console through the daemon. Raw terminal,
 * Ctrl-] detaches; the guest keeps running and its output keeps being recorded.
 * `--log` prints what the guest said so far (the daemon keeps the last 256 KiB), its control
 * characters shown as escapes (`--raw`: as they are); the live console passes bytes through.
 */
import type { Command } from 'commander';
import { escapeForTerminal } from '../../util/terminal-text.js';
import { withClient, withConnect, type ConnectOpts } from './connect.js';

const DetachByte = 0x1d; // Ctrl-]

export function register(program: Command): void {
  withConnect(program.command('console')
    .description('attach to the serial console (Ctrl-] detaches)')
    .argument('<name>', 'domain name')
    .option('--log', 'print the console history and exit (control characters shown as escapes)')
    .option('--raw', 'with --log: print the history byte for byte, escape sequences included')
    .option('--read-only', 'watch without typing (another client may be the writer)'))
    .action(async (name: string, o: ConnectOpts & { log?: boolean; raw?: boolean; readOnly?: boolean }) => {
      await withClient(o, async (c) => {
        if (o.log) {
          const history = await c.consoleLog(name);
          process.stdout.write(o.raw === true ? history : escapeForTerminal(history, { keepNewlines: true }));
          return;
        }
        const stream = await c.openConsole(name, o.readOnly ? 'read' : 'write');
        const stdin = process.stdin;
        const tty = stdin.isTTY === true;
        process.stderr.write(`Connected to domain '${name}'\r\nEscape character is ^] (Ctrl + ])\r\n`);
        if (tty) stdin.setRawMode(true);
        await new Promise<void>((resolve) => {
          const finish = (): void => {
            stdin.off('data', onInput);
            stdin.pause();
            if (tty) stdin.setRawMode(false);
            stream.destroy();
            resolve();
          };
          const onInput = (chunk: Buffer): void => {
            const i = chunk.indexOf(DetachByte);
            if (i >= 0) {
              if (i > 0 && !o.readOnly) stream.write(chunk.subarray(0, i));
              finish();
              return;
            }
            if (!o.readOnly) stream.write(chunk);
          };
          stream.on('data', (d: Buffer) => process.stdout.write(d));
          stream.on('close', finish);
          stream.on('error', finish);
          stdin.on('data', onInput);
          // Piped input (scripts): detach shortly after it ends, once the guest had time to answer.
          if (!tty) stdin.on('end', () => setTimeout(finish, 1000));
          stdin.resume();
        });
        process.stderr.write('\r\n');
      });
    });
}
