/** Snapshot verbs: snapshot-create, snapshot-list, snapshot-info, snapshot-revert, snapshot-delete (docs/snapshots.md). */
import type { Command } from 'commander';
import type { SnapshotInfo } from '../../api/index.js';
import { escapeForTerminal } from '../../util/terminal-text.js';
import { printJson, printTable, withClient, withConnect, type ConnectOpts } from './connect.js';
import { withJobProgress } from './job-progress.js';

type Opts = ConnectOpts & { json?: boolean };

function describe(s: SnapshotInfo): string {
  return s.kind === 'external' ? 'external, disk-only' : s.memory ? 'internal, disks + memory' : 'internal, disks';
}

/** The snapshot tree as virsh prints `snapshot-list --tree`: roots first, children indented under their parent. */
export function formatTree(snapshots: readonly SnapshotInfo[]): string {
  const byName = new Map(snapshots.map((s) => [s.name, s]));
  const lines: string[] = [];
  const walk = (s: SnapshotInfo, prefix: string, last: boolean, root: boolean): void => {
    lines.push(root ? s.name : `${prefix}${last ? '└─ ' : '├─ '}${s.name}${s.current ? ' (current)' : ''}`);
    if (root && s.current) lines[lines.length - 1] += ' (current)';
    const kids = s.children.map((c) => byName.get(c)).filter((c): c is SnapshotInfo => c !== undefined);
    const next = root ? '' : `${prefix}${last ? '   ' : '│  '}`;
    kids.forEach((k, i) => walk(k, next, i === kids.length - 1, false));
  };
  for (const root of snapshots.filter((s) => s.parent === undefined || !byName.has(s.parent))) {
    walk(root, '', true, true);
    lines.push('');
  }
  return lines.join('\n');
}

export function register(program: Command): void {
  withConnect(program.command('snapshot-create')
    .description('take a snapshot: internal (disks + memory of a running guest; all writable disks qcow2) or external disk-only')
    .argument('<name>', 'domain name')
    .argument('[snap]', 'snapshot name (default: the time in seconds since the epoch)')
    .option('--disk-only', 'external snapshot: a new qcow2 overlay per disk, the definitions switched to them')
    .option('--json', 'print the snapshot as JSON'))
    .action(async (name: string, snap: string | undefined, o: Opts & { diskOnly?: boolean }) => {
      const body = { ...(snap !== undefined ? { name: snap } : {}), ...(o.diskOnly === true ? { diskOnly: true } : {}) };
      const s = await withJobProgress(o, name, () => withClient(o, (c) => c.snapshotCreate(name, body)), o.json);
      if (o.json) printJson(s);
      else process.stdout.write(`Domain snapshot ${s.name} created (${describe(s)})\n`);
    });

  withConnect(program.command('snapshot-list')
    .description('list the snapshots of a domain')
    .argument('<name>', 'domain name')
    .option('--tree', 'show the snapshots as a tree of parents and children')
    .option('--json', 'print as JSON'))
    .action(async (name: string, o: Opts & { tree?: boolean }) => {
      const { snapshots } = await withClient(o, (c) => c.snapshotList(name));
      if (o.json) printJson(snapshots);
      else if (o.tree) process.stdout.write(formatTree(snapshots));
      else {
        printTable(['Name', 'Creation Time', 'State', 'Kind', 'Parent', 'Current'], snapshots.map((s) => [
          s.name, s.createdAt, s.state, describe(s), s.parent ?? '-', s.current ? 'yes' : '',
        ]));
      }
    });

  withConnect(program.command('snapshot-info')
    .description('show one snapshot of a domain')
    .argument('<name>', 'domain name')
    .argument('<snap>', 'snapshot name')
    .option('--json', 'print as JSON'))
    .action(async (name: string, snap: string, o: Opts) => {
      const s = await withClient(o, (c) => c.snapshotInfo(name, snap));
      if (o.json) { printJson(s); return; }
      const rows: [string, string][] = [
        ['Name', s.name], ['Domain', s.domain], ['Current', s.current ? 'yes' : 'no'], ['State', s.state],
        ['Kind', describe(s)], ['Created', s.createdAt], ['Parent', s.parent ?? '-'],
        ['Children', String(s.children.length)],
        ...s.disks.map((d): [string, string] => [`Disk ${d.id}`, escapeForTerminal(d.overlay ? `${d.path} (frozen; overlay ${d.overlay})` : `${d.path} (${d.format})`)]),
      ];
      for (const [k, v] of rows) process.stdout.write(`${`${k}:`.padEnd(15)} ${v}\n`);
    });

  withConnect(program.command('snapshot-revert')
    .description('go back to a snapshot (its disks, and its memory when it has it)')
    .argument('<name>', 'domain name')
    .argument('<snap>', 'snapshot name')
    .option('--json', 'print the domain state as JSON'))
    .action(async (name: string, snap: string, o: Opts) => {
      const r = await withJobProgress(o, name, () => withClient(o, (c) => c.snapshotRevert(name, snap)), o.json);
      if (o.json) printJson(r);
      else process.stdout.write(`Domain '${name}' reverted to snapshot ${snap} (${r.state})\n`);
    });

  withConnect(program.command('snapshot-delete')
    .description('delete a snapshot (its children move to its parent)')
    .argument('<name>', 'domain name')
    .argument('<snap>', 'snapshot name'))
    .action(async (name: string, snap: string, o: ConnectOpts) => {
      await withClient(o, (c) => c.snapshotDelete(name, snap));
      process.stdout.write(`Domain snapshot ${snap} deleted\n`);
    });
}
