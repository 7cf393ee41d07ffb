/**
 * Guest names as TARGET for `fs`, `inspect` and `bootinfo`: the manager knows each defined
 * guest's disks and whether it runs. This resolver asks it (through the typed client, like
 * every other verb) and gives the guest filesystem layer a path and a declared format; the
 * format comes from the definition, never from the image's content.
 */
import type { Command } from 'commander';
import type { GuestDiskResolver, TargetOptions } from '../../guestfs/index.js';
import { VirtkitError, isVirtkitError } from '../../util/errors.js';
import { wholeNumberOption } from '../options.js';
import type { ConnectOpts } from './connect.js';

interface DefinedDisk {
  source?: string;
  volume?: string;
  format: string;
}

/**
 * Resolves `NAME` to its disk number `disk` (0-based). Returns undefined when no manager is
 * reachable or it has no such guest, so the caller reports "no image file" for a typo.
 * Throws `argument.invalid` when the guest has fewer disks.
 */
export function managerDiskResolver(opts: ConnectOpts): GuestDiskResolver {
  return async (name, disk) => {
    // Loaded only when a target is not a file: reading an image needs nothing of the client.
    const { connect } = await import('../../client/index.js');
    const client = connect(opts.connect);
    try {
      const info = await client.info(name);
      const def = JSON.parse((await client.getDefinition(name, 'json')).text) as { disks?: DefinedDisk[] };
      const chosen = def.disks?.[disk];
      if (chosen === undefined) {
        throw new VirtkitError('argument.invalid', `guest '${name}' has ${def.disks?.length ?? 0} disk(s): there is no disk ${disk}`, { name, disk });
      }
      let path = chosen.source;
      if (path === undefined && chosen.volume !== undefined) {
        const [pool = '', volume = ''] = chosen.volume.split('/');
        path = (await client.volumeInfo(pool, volume)).path;
      }
      if (path === undefined) throw new VirtkitError('argument.invalid', `guest '${name}' disk ${disk} names no image`, { name, disk });
      return { path, format: chosen.format, running: info.state === 'running' || info.state === 'paused' };
    } catch (err) {
      if (isVirtkitError(err, 'domain.not-found') || isVirtkitError(err, 'connection.failed')) return undefined;
      throw err;
    } finally {
      client.close();
    }
  };
}

/** The options `inspect` and `bootinfo` share with `fs` for naming a guest's disk. */
export interface GuestTargetOptions extends ConnectOpts {
  format?: string;
  disk?: number;
  ro?: boolean;
}

export function guestTargetOptions(opts: GuestTargetOptions): TargetOptions {
  return {
    ...(opts.format === undefined ? {} : { format: opts.format }),
    ...(opts.disk === undefined ? {} : { disk: opts.disk }),
    readOnly: opts.ro === true,
    resolveGuest: managerDiskResolver(opts),
    warn: (m) => { process.stderr.write(`virtkit: warning: ${m}\n`); },
  };
}

/** Adds the options that name a target's format, or a guest's disk and the manager to ask. */
export function addGuestTargetOptions(cmd: Command): Command {
  return cmd
    .option('--format <format>', 'image format: raw, qcow2, vmdk or vdi (default: from the file name, .qcow2/.raw/.img/.iso/.vmdk/.vdi, or a guest\'s definition; never from the content)')
    .addOption(wholeNumberOption('--disk <n>', 'for a guest name: which of its disks, counted from 0', { min: 0, max: 63 }))
    .option('--ro', 'allow reading a running guest\'s disk (the view may be inconsistent)')
    .option('-c, --connect <socket>', 'for a guest name: the manager\'s socket (default: $VIRTKIT_CONNECT)');
}
