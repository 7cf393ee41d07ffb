/** Pool verbs (virsh names): pool-define-as, pool-list, pool-info, pool-refresh, pool-undefine. */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { PoolInfo } from '../../api/index.js';
import { VirtkitError } from '../../util/errors.js';
import { formatBytes } from './img.js';
import { printJson, printTable, withClient, withConnect, type ConnectOpts } from './connect.js';

type Opts = ConnectOpts & { json?: boolean };

export function describePool(p: PoolInfo): string {
  const rows: [string, string][] = [
    ['Name', p.name], ['Type', p.type], ['Path', p.path], ['State', p.state],
    ...(p.capacity !== undefined ? [['Capacity', formatBytes(p.capacity)] as [string, string]] : []),
    ...(p.allocation !== undefined ? [['Allocation', formatBytes(p.allocation)] as [string, string]] : []),
    ...(p.available !== undefined ? [['Available', formatBytes(p.available)] as [string, string]] : []),
    ['Volumes', String(p.volumes)],
    ...(p.problem !== undefined ? [['Problem', p.problem] as [string, string]] : []),
  ];
  return rows.map(([k, v]) => `${`${k}:`.padEnd(15)} ${v}\n`).join('');
}

export function register(program: Command): void {
  withConnect(program.command('pool-define-as')
    .description('define a storage pool: a directory whose image files are its volumes')
    .argument('<name>', 'pool name')
    .argument('<type>', 'pool type: dir')
    .argument('[path]', 'the directory (must exist; relative to the current directory)')
    .option('--target <path>', 'the directory, as virsh spells it')
    .option('--json', 'print the pool info as JSON')
    .addHelpText('after', '\nExample:\n  virtkit pool-define-as images dir /var/lib/virtkit/images\n'))
    .action(async (name: string, type: string, path: string | undefined, o: Opts & { target?: string }) => {
      const dir = path ?? o.target;
      if (dir === undefined) throw new VirtkitError('argument.invalid', 'name the pool directory: pool-define-as NAME dir PATH', { field: 'path' });
      if (type !== 'dir') throw new VirtkitError('pool.invalid', `pool type must be dir, got "${type}"`, { field: 'type' });
      const info = await withClient(o, (c) => c.poolDefine({ name, type, path: resolve(dir) }));
      if (o.json) printJson(info);
      else process.stdout.write(`Pool ${info.name} defined from ${info.path}\n`);
    });

  withConnect(program.command('pool-list')
    .description('list pools whose directory is reachable (all with --all)')
    .option('--all', 'include inactive pools (directory missing)')
    .option('--name', 'print names only, one per line')
    .option('--json', 'print as JSON'))
    .action(async (o: Opts & { all?: boolean; name?: boolean }) => {
      const { pools } = await withClient(o, (c) => c.poolList({ all: o.all === true }));
      if (o.json) printJson(pools);
      else if (o.name) for (const p of pools) process.stdout.write(`${p.name}\n`);
      else printTable(['Name', 'State', 'Type', 'Path'], pools.map((p) => [p.name, p.state, p.type, p.path]));
    });

  withConnect(program.command('pool-info')
    .description('show a pool: its directory, the filesystem\'s capacity, allocation and available space, the volume count')
    .argument('<pool>', 'pool name')
    .option('--json', 'print as JSON'))
    .action(async (pool: string, o: Opts) => {
      const info = await withClient(o, (c) => c.poolInfo(pool));
      if (o.json) printJson(info);
      else process.stdout.write(describePool(info));
    });

  withConnect(program.command('pool-refresh')
    .description('rescan a pool\'s directory')
    .argument('<pool>', 'pool name')
    .option('--json', 'print the pool info as JSON'))
    .action(async (pool: string, o: Opts) => {
      const info = await withClient(o, (c) => c.poolRefresh(pool));
      if (o.json) printJson(info);
      else process.stdout.write(`Pool ${pool} refreshed (${info.volumes} volume${info.volumes === 1 ? '' : 's'})\n`);
    });

  withConnect(program.command('pool-undefine')
    .description('remove a pool definition (the directory and its files stay); refused while defined guests use its volumes')
    .argument('<pool>', 'pool name'))
    .action(async (pool: string, o: ConnectOpts) => {
      await withClient(o, (c) => c.poolUndefine(pool));
      process.stdout.write(`Pool ${pool} has been undefined\n`);
    });
}
