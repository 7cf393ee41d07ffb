/**
 * Volume verbs (virsh names): vol-create-as, vol-list, vol-info, vol-clone, vol-resize,
 * vol-delete, vol-upload, vol-download. Verbs on one volume take either `POOL VOL ...` or, as
 * virsh writes them, `VOL ... --pool POOL`.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { stat, unlink } from 'node:fs/promises';
import type { Command } from 'commander';
import type { VolumeInfo } from '../../api/index.js';
import { VirtkitError } from '../../util/errors.js';
import { formatBytes, parseImageSize } from './img.js';
import { printJson, printTable, withClient, withConnect, type ConnectOpts } from './connect.js';

type Opts = ConnectOpts & { json?: boolean; pool?: string };

/**
 * Splits positional arguments into the pool and the rest: `POOL VOL ...` or `VOL ... --pool POOL`.
 * @throws argument.invalid when the count does not fit either form.
 */
export function splitPoolArgs(args: string[], pool: string | undefined, rest: string[], verb: string): { pool: string; args: string[] } {
  const usage = `usage: ${verb} POOL ${rest.join(' ')}  or  ${verb} ${rest.join(' ')} --pool POOL`;
  if (pool !== undefined) {
    if (args.length !== rest.length) throw new VirtkitError('argument.invalid', usage, { verb });
    return { pool, args };
  }
  if (args.length !== rest.length + 1) throw new VirtkitError('argument.invalid', usage, { verb });
  return { pool: args[0]!, args: args.slice(1) };
}

function volumeCommand(program: Command, verb: string, rest: string[], description: string): Command {
  return withConnect(program.command(verb)
    .description(description)
    .usage(`[options] POOL ${rest.join(' ')}  |  ${rest.join(' ')} --pool POOL`)
    .argument('<args...>', `[POOL] ${rest.join(' ')}`)
    .option('--pool <pool>', 'the pool (virsh\'s form)'));
}

export function describeVolume(v: VolumeInfo): string {
  const rows: [string, string][] = [
    ['Name', v.name], ['Pool', v.pool], ['Path', v.path], ['Format', v.format],
    ['Capacity', `${formatBytes(v.capacity)} (${v.capacity} bytes)`], ['Allocation', formatBytes(v.allocation)],
  ];
  if (v.backing) rows.push(['Backing', v.backing.volume !== undefined ? `${v.backing.volume} (${v.backing.format ?? 'format not recorded'})` : v.backing.path]);
  if (v.problem) rows.push(['Problem', v.problem]);
  return rows.map(([k, val]) => `${`${k}:`.padEnd(15)} ${val}\n`).join('');
}

/** Progress of a transfer: a bar on a terminal, JSON lines with --json, nothing otherwise. */
function progressReporter(json: boolean): { report: (done: number, total: number) => void; finish: (total: number) => void } {
  const tty = !json && process.stderr.isTTY === true;
  let lastPercent = -1;
  return {
    report: (done, total) => {
      const percent = total > 0 ? Math.floor((done / total) * 100) : 100;
      if (percent === lastPercent) return;
      lastPercent = percent;
      if (json) process.stdout.write(`${JSON.stringify({ event: 'progress', done, total })}\n`);
      else if (tty) {
        const filled = Math.round((percent / 100) * 30);
        process.stderr.write(`\r[${'#'.repeat(filled)}${'-'.repeat(30 - filled)}] ${String(percent).padStart(3)}%  ${formatBytes(done)} / ${formatBytes(total)}\x1b[K`);
      }
    },
    finish: (total) => {
      if (json) process.stdout.write(`${JSON.stringify({ event: 'done', total })}\n`);
      else if (tty) process.stderr.write('\n');
    },
  };
}

export function register(program: Command): void {
  withConnect(program.command('vol-create-as')
    .description('create a volume in a pool; the name\'s extension declares the format (.qcow2, .raw, .img)')
    .argument('<pool>', 'pool name')
    .argument('<name>', 'volume name, e.g. disk.qcow2')
    .argument('<size>', 'virtual size: 4096, 512M, 10G')
    .option('--format <fmt>', 'raw or qcow2 (default: what the name declares; must agree with it)')
    .option('--backing <vol>', 'a volume of the same pool to back this one (qcow2; its format is passed explicitly)')
    .option('--backing-vol <vol>', 'the same, as virsh spells it')
    .option('--json', 'print the volume info as JSON')
    .addHelpText('after', '\nExamples:\n  virtkit vol-create-as images base.qcow2 1G --format qcow2\n  virtkit vol-create-as images web1.qcow2 1G --format qcow2 --backing base.qcow2\n'))
    .action(async (pool: string, name: string, size: string, o: Opts & { format?: string; backing?: string; backingVol?: string }) => {
      const backing = o.backing ?? o.backingVol;
      const format = o.format ?? (name.toLowerCase().endsWith('.qcow2') ? 'qcow2' : 'raw');
      if (format !== 'raw' && format !== 'qcow2') throw new VirtkitError('argument.invalid', `--format must be raw or qcow2, got "${format}"`, { field: 'format' });
      const info = await withClient(o, (c) => c.volumeCreate(pool, {
        name, format, capacity: parseImageSize(size), ...(backing !== undefined ? { backing } : {}),
      }));
      if (o.json) printJson(info);
      else process.stdout.write(`Vol ${info.name} created (${info.path})\n`);
    });

  withConnect(program.command('vol-list')
    .description('list the volumes of a pool')
    .argument('<pool>', 'pool name')
    .option('--json', 'print as JSON'))
    .action(async (pool: string, o: Opts) => {
      const { volumes } = await withClient(o, (c) => c.volumeList(pool));
      if (o.json) { printJson(volumes); return; }
      printTable(['Name', 'Format', 'Capacity', 'Allocation', 'Backing', 'Path'], volumes.map((v) => [
        v.name, v.format, v.problem ? 'unreadable' : formatBytes(v.capacity), formatBytes(v.allocation),
        v.backing?.volume ?? v.backing?.path ?? '-', v.path,
      ]));
    });

  volumeCommand(program, 'vol-info', ['VOL'], 'show a volume: format, capacity, allocation, backing volume, path')
    .option('--json', 'print as JSON')
    .action(async (args: string[], o: Opts) => {
      const { pool, args: [vol] } = splitPoolArgs(args, o.pool, ['VOL'], 'vol-info');
      const info = await withClient(o, (c) => c.volumeInfo(pool, vol!));
      if (o.json) printJson(info);
      else process.stdout.write(describeVolume(info));
    });

  volumeCommand(program, 'vol-clone', ['VOL', 'NEWNAME'], 'copy a volume under a new name (standalone: the backing chain is flattened; NEWNAME\'s extension picks the format)')
    .option('--json', 'print the new volume\'s info as JSON')
    .action(async (args: string[], o: Opts) => {
      const { pool, args: [vol, name] } = splitPoolArgs(args, o.pool, ['VOL', 'NEWNAME'], 'vol-clone');
      const info = await withClient(o, (c) => c.volumeClone(pool, vol!, name!));
      if (o.json) printJson(info);
      else process.stdout.write(`Vol ${info.name} cloned from ${vol}\n`);
    });

  volumeCommand(program, 'vol-resize', ['VOL', 'SIZE'], 'change a volume\'s capacity: 10G, +1G (--delta), smaller only with --shrink')
    .option('--delta', 'SIZE is added to the current capacity (subtracted with --shrink)')
    .option('--shrink', 'allow a smaller capacity (data past the new end is lost)')
    .option('--json', 'print the volume info as JSON')
    .action(async (args: string[], o: Opts & { delta?: boolean; shrink?: boolean }) => {
      const { pool, args: [vol, size] } = splitPoolArgs(args, o.pool, ['VOL', 'SIZE'], 'vol-resize');
      const m = /^([+-]?)(.*)$/.exec(size!)!;
      const amount = parseImageSize(m[2]!);
      const info = await withClient(o, async (c) => {
        let target = amount;
        if (m[1] !== '' || o.delta) {
          const current = (await c.volumeInfo(pool, vol!)).capacity;
          const subtract = m[1] === '-' || (o.delta === true && o.shrink === true && m[1] === '');
          target = subtract ? current - amount : current + amount;
          if (target < 0) throw new VirtkitError('argument.invalid', `cannot shrink ${formatBytes(current)} by ${formatBytes(amount)}`, { field: 'size' });
        }
        return c.volumeResize(pool, vol!, target, { shrink: o.shrink === true });
      });
      if (o.json) printJson(info);
      else process.stdout.write(`Size of volume '${vol}' successfully changed to ${formatBytes(info.capacity)}\n`);
    });

  volumeCommand(program, 'vol-delete', ['VOL'], 'delete a volume; refused while a defined guest or another volume (as backing file) uses it')
    .action(async (args: string[], o: Opts) => {
      const { pool, args: [vol] } = splitPoolArgs(args, o.pool, ['VOL'], 'vol-delete');
      await withClient(o, (c) => c.volumeDelete(pool, vol!));
      process.stdout.write(`Vol ${vol} deleted\n`);
    });

  volumeCommand(program, 'vol-upload', ['VOL', 'FILE'], 'replace a volume\'s content with FILE\'s bytes, streamed (a progress bar on a terminal)')
    .option('--json', 'print progress as JSON lines: {"event":"progress","done":N,"total":N}, then the volume info')
    .action(async (args: string[], o: Opts) => {
      const { pool, args: [vol, file] } = splitPoolArgs(args, o.pool, ['VOL', 'FILE'], 'vol-upload');
      const st = await stat(file!).catch((err: Error) => { throw new VirtkitError('argument.invalid', `cannot read ${file}: ${err.message}`, { file }); });
      if (!st.isFile()) throw new VirtkitError('argument.invalid', `${file} is not a regular file`, { file });
      const progress = progressReporter(o.json === true);
      const info = await withClient(o, async (c) => {
        await c.volumeInfo(pool, vol!); // a clear error before any byte is sent
        return c.volumeUpload(pool, vol!, createReadStream(file!), st.size, progress.report);
      });
      progress.finish(st.size);
      if (o.json) process.stdout.write(`${JSON.stringify({ event: 'volume', volume: info })}\n`);
      else process.stdout.write(`Vol ${vol} uploaded (${formatBytes(st.size)})\n`);
    });

  volumeCommand(program, 'vol-download', ['VOL', 'FILE'], 'copy a volume\'s bytes into FILE, streamed (a progress bar on a terminal)')
    .option('--json', 'print progress as JSON lines: {"event":"progress","done":N,"total":N}')
    .option('--allow-running', 'download even while a running guest may write the volume (the copy may be inconsistent; a warning names the guests)')
    .action(async (args: string[], o: Opts & { allowRunning?: boolean }) => {
      const { pool, args: [vol, file] } = splitPoolArgs(args, o.pool, ['VOL', 'FILE'], 'vol-download');
      const progress = progressReporter(o.json === true);
      const bytes = await withClient(o, async (c) => {
        await c.volumeInfo(pool, vol!); // no empty FILE left behind for a volume that is not there
        try {
          return await c.volumeDownload(pool, vol!, createWriteStream(file!), progress.report, {
            allowRunning: o.allowRunning === true,
            onInUse: (writers) => {
              const who = writers.map((w) => `"${w.domain}"${w.disk !== undefined ? ` (disk ${w.disk})` : ''}`).join(', ');
              process.stderr.write(`virtkit: warning: ${pool}/${vol} is in use by ${who}, which may write it during the download: the copy may be inconsistent\n`);
            },
          });
        } catch (err) {
          await unlink(file!).catch(() => undefined);
          throw err;
        }
      });
      progress.finish(bytes);
      if (!o.json) process.stdout.write(`Vol ${vol} downloaded to ${file} (${formatBytes(bytes)})\n`);
    });
}
