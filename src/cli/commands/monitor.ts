/**
 * `virtkit qemu-monitor-command NAME '{"execute":"query-status"}'` or `--hmp 'info qtree'`:
 * raw monitor access. The domain is marked tainted: virtkit no longer vouches for its state.
 */
import type { Command } from 'commander';
import type { MonitorBody } from '../../api/index.js';
import { VirtkitError } from '../../util/errors.js';
import { printJson, withClient, withConnect, type ConnectOpts } from './connect.js';

export function parseQmpCommand(text: string): MonitorBody {
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch (err) {
    throw new VirtkitError('argument.invalid', `the QMP command is not JSON: ${(err as Error).message}`);
  }
  const o = obj as { execute?: unknown; arguments?: unknown };
  if (!o || typeof o !== 'object' || typeof o.execute !== 'string') {
    throw new VirtkitError('argument.invalid', 'a QMP command is an object like {"execute":"query-status"}');
  }
  if (o.arguments !== undefined && (typeof o.arguments !== 'object' || o.arguments === null || Array.isArray(o.arguments))) {
    throw new VirtkitError('argument.invalid', 'QMP "arguments" must be an object');
  }
  return { qmp: o.arguments === undefined ? { execute: o.execute } : { execute: o.execute, arguments: o.arguments as Record<string, never> } };
}

export function register(program: Command): void {
  withConnect(program.command('qemu-monitor-command')
    .description('send a raw QMP (JSON) or HMP (--hmp) command to the guest\'s QEMU; taints the domain')
    .argument('<name>', 'domain name')
    .argument('[command]', 'QMP command as JSON, e.g. \'{"execute":"query-status"}\'')
    .option('--hmp <command>', 'human monitor command line, e.g. "info qtree"')
    .option('--json', 'print the QMP reply compactly on one line'))
    .action(async (name: string, command: string | undefined, o: ConnectOpts & { hmp?: string; json?: boolean }) => {
      if ((command === undefined) === (o.hmp === undefined)) {
        throw new VirtkitError('argument.invalid', 'give either a QMP JSON command or --hmp "command"');
      }
      const body: MonitorBody = o.hmp !== undefined ? { hmp: o.hmp } : parseQmpCommand(command!);
      const result = await withClient(o, (c) => c.monitorCommand(name, body));
      if (typeof result === 'string') process.stdout.write(result.endsWith('\n') || result === '' ? result : `${result}\n`);
      else if (o.json) process.stdout.write(`${JSON.stringify(result)}\n`);
      else printJson(result);
    });
}
