/**
 * `virtkit nbd FILE -f FMT`: export a disk image over NBD (qemu-nbd's job) from the native
 * block layer. Read-only unless --snapshot, which keeps writes in a throwaway overlay; the
 * image file itself is never written.
 */
import { isIP } from 'node:net';
import type { Command } from 'commander';
import { VirtkitError } from '../../util/errors.js';
import { chooseImageFormat, openImage } from '../../storage/image/index.js';
import { NbdServer, type NbdListen } from '../../storage/nbd/index.js';
import { wholeNumberOption } from '../options.js';

/** The NBD port registered with IANA, qemu-nbd's default too. */
export const DEFAULT_NBD_PORT = 10809;

interface NbdOptions {
  format?: string;
  socket?: string;
  port?: number;
  bind?: string;
  readOnly?: boolean;
  snapshot?: boolean;
  exportName: string;
  shared: number;
}

export function register(program: Command): void {
  program
    .command('nbd')
    .description('serve a disk image over NBD until interrupted (read-only, or --snapshot for throwaway writes)')
    .argument('<file>', 'image file to export')
    .option('-f, --format <fmt>', 'image format: raw, qcow2, vmdk or vdi (default: from the name, .qcow2/.raw/.img/.iso/.vmdk/.vdi; never from the content)')
    .option('-k, --socket <path>', 'listen on this unix socket')
    .addOption(wholeNumberOption('-p, --port <n>', `listen on this TCP port (default ${DEFAULT_NBD_PORT}; 0 picks a free one)`, { min: 0, max: 65_535 }))
    .option('-b, --bind <addr>', 'TCP address to bind (default 127.0.0.1; NBD has no access control)')
    .option('-r, --read-only', 'refuse writes (the default unless --snapshot)')
    .option('-s, --snapshot', 'accept writes into a throwaway overlay; the image is never modified')
    .option('-x, --export-name <name>', 'export name clients ask for', '')
    .addOption(wholeNumberOption('-e, --shared <n>', 'clients served at once (more wait their turn)', { min: 1, max: 1024 }).default(1))
    .addHelpText('after', `
Examples:
  virtkit nbd disk.qcow2 --socket /tmp/disk.sock
  qemu-img convert -O raw 'nbd+unix:///?socket=/tmp/disk.sock' copy.raw
  virtkit nbd /dev/vg/disk -f raw --port 10809 --snapshot`)
    .action(async (file: string, opts: NbdOptions) => {
      await runNbd(file, opts);
    });
}

async function runNbd(file: string, opts: NbdOptions): Promise<void> {
  if (opts.readOnly && opts.snapshot) {
    throw new VirtkitError('argument.invalid', '--read-only and --snapshot exclude each other');
  }
  const listen = listenAddress(opts);
  if (listen.kind === 'tcp' && !isLoopback(listen.host)) {
    process.stderr.write(`virtkit: warning: NBD has no access control: anyone who can reach ${listen.host}:${listen.port}`
      + ` can read ${opts.snapshot ? 'and write ' : ''}this export\n`);
  }

  const device = await openImage(file, { format: chooseImageFormat(file, { explicit: opts.format, flag: '-f' }).format });
  let server: NbdServer;
  try {
    server = await NbdServer.start({
      device,
      listen,
      mode: opts.snapshot ? 'snapshot' : 'read-only',
      exportName: opts.exportName,
      shared: opts.shared,
      onConnectionError: (err) => process.stderr.write(`virtkit: nbd client dropped: ${err.describe()}\n`),
    });
  } catch (err) {
    await device.close();
    throw err;
  }
  // Install the signal handlers before announcing the URI: whoever reads it may signal at once.
  const stopped = new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  process.stderr.write(`virtkit: serving '${file}' (${device.format}, ${device.size} bytes, `
    + `${opts.snapshot ? 'snapshot' : 'read-only'}); stop with Ctrl-C\n`);
  process.stdout.write(`${server.uri}\n`);
  await stopped;
  await server.close();
  await device.close();
}

function listenAddress(opts: NbdOptions): NbdListen {
  if (opts.socket !== undefined) {
    if (opts.port !== undefined || opts.bind !== undefined) {
      throw new VirtkitError('argument.invalid', '--socket excludes --port and --bind');
    }
    return { kind: 'unix', path: opts.socket };
  }
  const port = opts.port ?? DEFAULT_NBD_PORT;
  const host = opts.bind ?? '127.0.0.1';
  if (opts.bind !== undefined && isIP(host) === 0 && host !== 'localhost') {
    throw new VirtkitError('argument.invalid', `--bind takes an IP address, got '${host}'`);
  }
  return { kind: 'tcp', host, port };
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
}
