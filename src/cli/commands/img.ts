/**
 * `virtkit img`: qemu-img's verbs. info and map are native (read through the block layer,
 * backing formats never probed); create, convert, check, resize and compare run qemu-img
 * with explicit formats, after the native layer has vetted the source's backing chain.
 */
import type { Command } from 'commander';
import { chooseImageFormat, inspectImage, openImage, type Image, type ImageInfo, type MapExtent } from '../../storage/image/index.js';
import { checkImage, compareImages, convertImage, createImage, resizeImage } from '../../storage/index.js';
import { VirtkitError } from '../../util/errors.js';
import { timeoutOption } from '../options.js';

const TIMEOUT_HELP = 'kill qemu-img after this long (default: 600 for create, check and resize; 86400 for convert and compare)';

/** The run options of a verb that ran with --timeout. */
function runWithin(seconds: number | undefined): { timeoutMs?: number } {
  return seconds === undefined ? {} : { timeoutMs: Math.round(seconds * 1000) };
}

const FORMAT_HELP = 'image format: raw, qcow2, vmdk or vdi (default: from the name, .qcow2/.raw/.img/.iso/.vmdk/.vdi; never from the content)';

/** The image format rule every command shares (docs/images.md): the option, else the name. */
export function formatFor(path: string, explicit: string | undefined, flag = '-f'): string {
  return chooseImageFormat(path, { explicit, flag }).format;
}

const UNITS: Record<string, number> = { '': 1, b: 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40, p: 2 ** 50, e: 2 ** 60 };

/** `10G`, `512M`, `1.5GiB`, `4096`: bytes (binary units, as qemu-img reads them). */
export function parseImageSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgtpe]?)(?:i?b)?$/i.exec(text.trim());
  const bytes = m === null ? NaN : Number(m[1]) * UNITS[m[2]!.toLowerCase()]!;
  if (!Number.isSafeInteger(bytes) || bytes < 0) {
    throw new VirtkitError('argument.invalid', `'${text}' is not a size (e.g. 4096, 512M, 10G)`, { field: 'size', value: text });
  }
  return bytes;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return i === 0 ? `${n} B` : `${Number.isInteger(v) ? v : v.toFixed(2).replace(/\.?0+$/, '')} ${units[i]}`;
}

async function withImage<T>(path: string, format: string, fn: (img: Image) => Promise<T>): Promise<T> {
  const img = await openImage(path, { format });
  try {
    return await fn(img);
  } finally {
    await img.close();
  }
}

/** The layers of an image's backing chain, top first. */
function chainOf(img: Image): Image[] {
  const out: Image[] = [];
  for (let l: Image | null = img; l !== null; l = l.backing) out.push(l);
  return out;
}

/** qemu-img's human `info` layout, so it reads the same. */
export function describeInfo(info: ImageInfo): string {
  const lines = [
    `image: ${info.filename}`,
    `file format: ${info.format}`,
    `virtual size: ${formatBytes(info['virtual-size'])} (${info['virtual-size']} bytes)`,
    `disk size: ${formatBytes(info['actual-size'])}`,
  ];
  if (info['cluster-size'] !== undefined) lines.push(`cluster_size: ${info['cluster-size']}`);
  if (info['backing-filename'] !== undefined) {
    const full = info['full-backing-filename'];
    lines.push(`backing file: ${info['backing-filename']}${full !== undefined && full !== info['backing-filename'] ? ` (actual path: ${full})` : ''}`);
  }
  if (info['backing-filename-format'] !== undefined) lines.push(`backing file format: ${info['backing-filename-format']}`);
  const specific = info['format-specific'];
  if (specific !== undefined) {
    lines.push('Format specific information:');
    for (const [k, v] of Object.entries(specific.data)) lines.push(`    ${k}: ${String(v)}`);
  }
  if (info['dirty-flag']) lines.push('dirty flag: set (refcounts may be inconsistent; run img check)');
  return `${lines.join('\n')}\n`;
}

export function describeMap(map: readonly MapExtent[]): string {
  const rows = [['Offset', 'Length', 'Depth', 'Zero', 'Data', 'Mapped to', 'File']];
  for (const e of map) {
    rows.push([`0x${e.offset.toString(16)}`, `0x${e.length.toString(16)}`, String(e.depth), e.zero ? 'yes' : 'no',
      e.data ? (e.compressed ? 'compressed' : 'yes') : 'no', e.hostOffset !== undefined ? `0x${e.hostOffset.toString(16)}` : '-',
      e.present ? e.file : '-']);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c]!)).join('  ').trimEnd()).join('\n') + '\n';
}

/** One line, redrawn with \r and cleared to its end: `[#########-----------]  45.0%  450 MiB / 1 GiB`. */
function progressLine(done: number, total: number): string {
  const fraction = total === 0 ? 1 : Math.min(1, done / total);
  const width = 30;
  const filled = Math.round(fraction * width);
  return `\r[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${(fraction * 100).toFixed(1).padStart(5)}%  ${formatBytes(done)} / ${formatBytes(total)}\x1b[K`;
}

interface InfoOptions { format?: string; json?: boolean; backingChain?: boolean }
interface ConvertOptions { format?: string; outputFormat: string; json?: boolean; compress?: boolean; options?: string; progress?: boolean; timeout?: number }
interface CreateOptions { format: string; backing?: string; backingFormat?: string; options?: string; timeout?: number }

/** `-o a=b,c=d` into a record (commas doubled inside values, as qemu-img writes them). */
function parseOptionList(text: string | undefined): Record<string, string> | undefined {
  if (text === undefined) return undefined;
  const out: Record<string, string> = {};
  for (const part of text.split(/(?<!,),(?!,)/)) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new VirtkitError('argument.invalid', `-o expects key=value pairs, got '${part}'`, { field: 'options' });
    out[part.slice(0, eq)] = part.slice(eq + 1).replaceAll(',,', ',');
  }
  return out;
}

export function register(program: Command): void {
  const img = program.command('img').description('inspect, create and convert disk images (qemu-img\'s verbs)');

  img.command('info')
    .description('show an image\'s format, sizes, backing file and format details (read natively)')
    .argument('<file>')
    .option('-f, --format <fmt>', FORMAT_HELP)
    .option('--json', 'print JSON (qemu-img info --output=json keys)')
    .option('--backing-chain', 'describe every layer of the backing chain')
    .addHelpText('after', '\nExample:\n  virtkit img info --backing-chain disk.qcow2\n')
    .action(async (file: string, opts: InfoOptions) => {
      const format = formatFor(file, opts.format);
      if (!opts.backingChain) {
        // One layer: the backing file need not exist or be openable, as with qemu-img info.
        const info = await inspectImage(file, { format });
        process.stdout.write(opts.json ? `${JSON.stringify(info, null, 2)}\n` : describeInfo(info));
        return;
      }
      await withImage(file, format, async (image) => {
        const infos = chainOf(image).map((l) => l.info());
        process.stdout.write(opts.json ? `${JSON.stringify(infos, null, 2)}\n` : infos.map(describeInfo).join('\n'));
      });
    });

  img.command('map')
    .description('show the allocation map: which ranges hold data, read as zeros, or come from a backing file')
    .argument('<file>')
    .option('-f, --format <fmt>', FORMAT_HELP)
    .option('--json', 'print JSON, one extent per array element')
    .action(async (file: string, opts: { format?: string; json?: boolean }) => {
      await withImage(file, formatFor(file, opts.format), async (image) => {
        const map = await image.mapExtents(0, image.size);
        if (!opts.json) {
          process.stdout.write(describeMap(map));
          return;
        }
        const rows = map.map((e) => ({
          start: e.offset, length: e.length, depth: e.depth, present: e.present, zero: e.zero, data: e.data,
          ...(e.compressed ? { compressed: true } : {}),
          ...(e.hostOffset !== undefined ? { offset: e.hostOffset } : {}),
          ...(e.present ? { filename: e.file } : {}),
        }));
        process.stdout.write(`${JSON.stringify(rows)}\n`);
      });
    });

  img.command('create')
    .description('create an image (qemu-img create)')
    .argument('<file>')
    .argument('[size]', 'virtual size: 4096, 512M, 10G (optional with a backing file)')
    .requiredOption('-f, --format <fmt>', 'raw or qcow2')
    .option('-b, --backing <file>', 'backing file (qcow2 only); relative names are relative to <file>')
    .option('-F, --backing-format <fmt>', 'format of the backing file (required with -b: never probed)')
    .option('-o, --options <opts>', 'format options, e.g. cluster_size=64k,compat=1.1,extended_l2=on')
    .addOption(timeoutOption(TIMEOUT_HELP))
    .addHelpText('after', '\nExamples:\n  virtkit img create -f qcow2 disk.qcow2 10G\n  virtkit img create -f qcow2 -b base.qcow2 -F qcow2 overlay.qcow2\n')
    .action(async (file: string, size: string | undefined, opts: CreateOptions) => {
      if (opts.format !== 'raw' && opts.format !== 'qcow2') {
        throw new VirtkitError('argument.invalid', `-f must be raw or qcow2, got '${opts.format}'`, { field: 'format' });
      }
      if (opts.backing !== undefined && opts.backingFormat === undefined) {
        throw new VirtkitError('argument.invalid', '-b needs -F naming the backing file\'s format (formats are never probed)', { field: 'backingFormat' });
      }
      if (size === undefined && opts.backing === undefined) {
        throw new VirtkitError('argument.invalid', 'a size is needed unless the image has a backing file', { field: 'size' });
      }
      await createImage({
        path: file,
        format: opts.format,
        ...(size !== undefined ? { size: parseImageSize(size) } : {}),
        ...(opts.backing !== undefined ? { backing: opts.backing, backingFormat: opts.backingFormat } : {}),
        ...(opts.options !== undefined ? { options: parseOptionList(opts.options) } : {}),
      }, runWithin(opts.timeout));
      process.stdout.write(`created ${file}\n`);
    });

  img.command('convert')
    .description('copy an image into another file and format (qemu-img convert), with progress')
    .argument('<source>')
    .argument('<target>')
    .option('-f, --format <fmt>', FORMAT_HELP)
    .requiredOption('-O, --output-format <fmt>', 'target format: raw, qcow2, or another format qemu-img writes (vmdk, vdi, vhdx...)')
    .option('-c, --compress', 'compress the target (qcow2)')
    .option('-o, --options <opts>', 'target format options, e.g. cluster_size=2M')
    .option('--json', 'print progress as JSON lines: {"event":"progress","done":N,"total":N}')
    .option('--no-progress', 'no progress bar')
    .addOption(timeoutOption(TIMEOUT_HELP))
    .addHelpText('after', '\nExample:\n  virtkit img convert -f qcow2 -O raw disk.qcow2 disk.raw\n')
    .action(async (source: string, target: string, opts: ConvertOptions) => {
      const sourceFormat = formatFor(source, opts.format);
      // Vet the chain natively first (backing formats recorded, no loops, no device nodes) and learn the size.
      const total = await withImage(source, sourceFormat, async (image) => image.size);
      const tty = process.stderr.isTTY === true && opts.progress !== false && !opts.json;
      let last = -1;
      const report = (fraction: number): void => {
        const done = Math.round(fraction * total);
        if (done === last) return;
        last = done;
        if (opts.json) process.stdout.write(`${JSON.stringify({ event: 'progress', done, total })}\n`);
        else if (tty) process.stderr.write(progressLine(done, total));
      };
      await convertImage({
        source, sourceFormat, target, targetFormat: opts.outputFormat,
        ...(opts.compress ? { compress: true } : {}),
        ...(opts.options !== undefined ? { options: parseOptionList(opts.options) } : {}),
        ...(opts.json || tty ? { onProgress: report } : {}),
      }, runWithin(opts.timeout));
      report(1);
      if (opts.json) process.stdout.write(`${JSON.stringify({ event: 'done', total })}\n`);
      else if (tty) process.stderr.write('\n');
    });

  img.command('check')
    .description('check a qcow2 image\'s metadata for corruption and leaks (qemu-img check)')
    .argument('<file>')
    .option('-f, --format <fmt>', FORMAT_HELP)
    .option('--json', 'print qemu-img\'s JSON report')
    .addOption(timeoutOption(TIMEOUT_HELP))
    .action(async (file: string, opts: { format?: string; json?: boolean; timeout?: number }) => {
      const format = formatFor(file, opts.format);
      await withImage(file, format, async () => undefined);
      const result = await checkImage(file, format, runWithin(opts.timeout));
      if (opts.json) process.stdout.write(`${JSON.stringify(result.report, null, 2)}\n`);
      if (result.corruptions > 0) {
        throw new VirtkitError('image.corrupt', `${file}: ${result.corruptions} corruption(s), ${result.leaks} leaked cluster(s)`,
          { path: file, corruptions: result.corruptions, leaks: result.leaks, report: result.report });
      }
      if (!opts.json) {
        process.stdout.write(result.leaks > 0
          ? `${file}: ${result.leaks} leaked cluster(s): space is wasted, data is fine\n`
          : `${file}: no errors were found\n`);
      }
    });

  img.command('resize')
    .description('change an image\'s virtual size (qemu-img resize); shrinking needs --shrink')
    .argument('<file>')
    .argument('<size>', 'new size (10G), or a change (+1G, -512M)')
    .option('-f, --format <fmt>', FORMAT_HELP)
    .option('--shrink', 'allow making the image smaller (data past the new end is lost)')
    .addOption(timeoutOption(TIMEOUT_HELP))
    .allowUnknownOption(false)
    .action(async (file: string, size: string, opts: { format?: string; shrink?: boolean; timeout?: number }) => {
      const format = formatFor(file, opts.format);
      const current = await withImage(file, format, async (image) => image.size);
      const m = /^([+-]?)(.*)$/.exec(size)!;
      const amount = parseImageSize(m[2]!);
      const target = m[1] === '+' ? current + amount : m[1] === '-' ? current - amount : amount;
      if (target < 0) throw new VirtkitError('argument.invalid', `cannot shrink ${formatBytes(current)} by ${formatBytes(amount)}`, { field: 'size' });
      if (target < current && !opts.shrink) {
        throw new VirtkitError('argument.invalid', `the new size ${formatBytes(target)} is smaller than ${formatBytes(current)}: pass --shrink to lose the data past it`, { field: 'size' });
      }
      await resizeImage(file, format, target, { shrink: target < current }, runWithin(opts.timeout));
      process.stdout.write(`${file}: ${formatBytes(current)} -> ${formatBytes(target)}\n`);
    });

  img.command('compare')
    .description('compare two images\' guest-visible contents (qemu-img compare); exit code 1 when they differ')
    .argument('<a>')
    .argument('<b>')
    .option('-f, --format <fmt>', `format of <a> (${FORMAT_HELP})`)
    .option('-F, --second-format <fmt>', 'format of <b>')
    .option('-s, --strict', 'images of different sizes differ (by default the larger one\'s tail must read as zeros)')
    .addOption(timeoutOption(TIMEOUT_HELP))
    .action(async (a: string, b: string, opts: { format?: string; secondFormat?: string; strict?: boolean; timeout?: number }) => {
      const aFormat = formatFor(a, opts.format);
      const bFormat = formatFor(b, opts.secondFormat, '-F');
      await withImage(a, aFormat, async () => undefined);
      await withImage(b, bFormat, async () => undefined);
      const res = await compareImages(a, aFormat, b, bFormat, { strict: opts.strict === true }, runWithin(opts.timeout));
      process.stdout.write(`${res.message}\n`);
      if (!res.identical) process.exitCode = 1;
    });
}
