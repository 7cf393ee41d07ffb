/**
 * Screens and keys, virsh's names (docs/screens.md): `vncdisplay` (the VNC server's unix
 * socket; --password sets a new random password over QMP and prints it once), `screenshot`
 * (a PNG written to FILE), `send-key` (keys pressed together: qcodes, linux KEY_* names, or
 * combinations like ctrl-alt-delete).
 */
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { VirtkitError } from '../../util/errors.js';
import { printJson, withClient, withConnect, type ConnectOpts } from './connect.js';

export function register(program: Command): void {
  withConnect(program.command('vncdisplay')
    .description('print the VNC unix socket of a running domain (graphics: vnc)')
    .argument('<name>', 'domain name')
    .option('--password', 'set a new random VNC password over QMP (needs vnc_password: true) and print it once')
    .option('--json', 'print as JSON'))
    .action(async (name: string, o: ConnectOpts & { password?: boolean; json?: boolean }) => {
      if (o.password) {
        const r = await withClient(o, (c) => c.setVncPassword(name));
        if (o.json) return printJson(r);
        process.stdout.write(`${r.socket}\npassword: ${r.password}\n`);
        return;
      }
      const r = await withClient(o, (c) => c.vncDisplay(name));
      if (o.json) return printJson(r);
      process.stdout.write(`${r.socket}\n`);
    });

  withConnect(program.command('screenshot')
    .description('save the screen of a running domain as a PNG file')
    .argument('<name>', 'domain name')
    .argument('<file>', 'the PNG file to write')
    .option('--json', 'print the file, width and height as JSON'))
    .action(async (name: string, file: string, o: ConnectOpts & { json?: boolean }) => {
      const shot = await withClient(o, (c) => c.screenshot(name));
      const path = resolve(file);
      await writeFile(path, Buffer.from(shot.data, 'base64')).catch((err: unknown) => {
        throw new VirtkitError('output.unwritable', `cannot write ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { path });
      });
      if (o.json) return printJson({ file: path, format: shot.format, width: shot.width, height: shot.height });
      process.stdout.write(`Screenshot saved to ${path}, with type of image/png (${shot.width}x${shot.height})\n`);
    });

  withConnect(program.command('send-key')
    .description('press keys together in a running domain, then release them')
    .argument('<name>', 'domain name')
    .argument('<keys...>', 'qcodes (ctrl, alt, delete, a, ret), linux names (KEY_LEFTCTRL, KEY_A) or combinations (ctrl-alt-delete)')
    .option('--holdtime <ms>', 'how long the keys are held (default 100)', (v: string) => {
      if (!/^[0-9]{1,5}$/.test(v) || Number(v) < 1) throw new VirtkitError('argument.invalid', `--holdtime: expected milliseconds (1-10000), got ${JSON.stringify(v)}`, {});
      return Number(v);
    })
    .option('--codeset <set>', 'accepted for virsh compatibility (linux and qcode names are both understood)')
    .addHelpText('after', '\nExamples:\n  virtkit send-key demo ctrl-alt-delete\n  virtkit send-key demo KEY_LEFTCTRL KEY_LEFTALT KEY_F2\n  virtkit send-key demo h\n'))
    .action(async (name: string, keys: string[], o: ConnectOpts & { holdtime?: number }) => {
      await withClient(o, (c) => c.sendKey(name, keys, o.holdtime));
    });
}
