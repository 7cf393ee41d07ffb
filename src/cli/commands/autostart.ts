/** `virtkit autostart NAME [--disable]`: start the domain when the host boots. */
import type { Command } from 'commander';
import { withClient, withConnect, type ConnectOpts } from './connect.js';

export function register(program: Command): void {
  withConnect(program.command('autostart')
    .description('start the domain when the manager first starts after a host boot')
    .argument('<name>', 'domain name')
    .option('--disable', 'turn autostart off'))
    .action(async (name: string, o: ConnectOpts & { disable?: boolean }) => {
      const enabled = o.disable !== true;
      await withClient(o, (c) => c.setAutostart(name, enabled));
      process.stdout.write(`Domain '${name}' ${enabled ? 'marked as autostarted' : 'unmarked as autostarted'}\n`);
    });
}
