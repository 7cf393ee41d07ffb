/**
 * `virtkit host-shutdown [--timeout S]`: what the host's shutdown sequence runs. Every running
 * guest is stopped in parallel following its `on_host_shutdown` policy; one line per guest
 * says how it ended. Exit status 1 when any guest failed to stop.
 */
import type { Command } from 'commander';
import { timeoutOption } from '../options.js';
import { printJson, printTable, withClient, withConnect, type ConnectOpts } from './connect.js';

export function register(program: Command): void {
  withConnect(program.command('host-shutdown')
    .description('stop every running guest per its on_host_shutdown policy (shutdown/destroy/none), in parallel')
    .addOption(timeoutOption('ACPI wait before forcing, for every guest (default: each definition\'s shutdown_timeout)'))
    .option('--json', 'print the per-guest report as JSON'))
    .action(async (o: ConnectOpts & { timeout?: number; json?: boolean }) => {
      const r = await withClient(o, (c) => c.hostShutdown(o.timeout === undefined ? {} : { timeout: o.timeout }));
      if (o.json) printJson(r);
      else printTable(['Name', 'Policy', 'Outcome', 'Seconds'], r.domains.map((d) => [d.name, d.policy, d.error ? `${d.outcome}: ${d.error}` : d.outcome, d.seconds.toFixed(1)]));
      if (r.domains.some((d) => d.outcome === 'failed')) process.exitCode = 1;
    });
}
