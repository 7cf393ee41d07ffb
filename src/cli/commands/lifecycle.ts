/** Power verbs: start, shutdown, destroy, reboot, reset, suspend, resume. */
import type { Command } from 'commander';
import { timeoutOption } from '../options.js';
import { printJson, withClient, withConnect, type ConnectOpts } from './connect.js';

type Opts = ConnectOpts & { json?: boolean };

export function register(program: Command): void {
  withConnect(program.command('start')
    .description('start a defined domain')
    .argument('<name>', 'domain name')
    .option('--paused', 'leave the guest CPUs paused')
    .option('--json', 'print the domain info as JSON'))
    .action(async (name: string, o: Opts & { paused?: boolean }) => {
      const info = await withClient(o, (c) => c.start(name, { paused: o.paused === true }));
      if (o.json) printJson(info);
      else process.stdout.write(`Domain '${name}' started (pid ${info.pid ?? '?'}, ${info.accel ?? 'unknown accel'})\n`);
    });

  withConnect(program.command('shutdown')
    .description('ACPI power button, then force the guest off after the timeout')
    .argument('<name>', 'domain name')
    .addOption(timeoutOption('how long to wait before forcing (default: the definition\'s shutdown_timeout)'))
    .option('--json', 'print the outcome as JSON'))
    .action(async (name: string, o: Opts & { timeout?: number }) => {
      const r = await withClient(o, (c) => c.shutdown(name, o.timeout === undefined ? {} : { timeout: o.timeout }));
      if (o.json) printJson(r);
      else process.stdout.write(r.outcome === 'clean' ? `Domain '${name}' is shut down\n` : `Domain '${name}' did not shut down in time and was forced off\n`);
    });

  const simple: [verb: string, description: string, done: string, call: 'destroy' | 'reboot' | 'reset' | 'suspend' | 'resume'][] = [
    ['destroy', 'stop a domain at once (like pulling the plug)', 'destroyed', 'destroy'],
    ['reboot', 'ask the guest to reboot (ACPI)', 'is being rebooted', 'reboot'],
    ['reset', 'hard reset, like the reset button', 'was reset', 'reset'],
    ['suspend', 'pause the guest CPUs', 'suspended', 'suspend'],
    ['resume', 'resume paused guest CPUs', 'resumed', 'resume'],
  ];
  for (const [verb, description, done, call] of simple) {
    withConnect(program.command(verb).description(description).argument('<name>', 'domain name'))
      .action(async (name: string, o: ConnectOpts) => {
        await withClient(o, async (c) => { await c[call](name); });
        process.stdout.write(`Domain '${name}' ${done}\n`);
      });
  }
}
