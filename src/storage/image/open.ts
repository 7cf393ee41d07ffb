/**
 * `openImage`: the one way in. The caller names the format; it is never guessed from the
 * content (a guest could otherwise write a qcow2 header into a raw disk and make the host
 * read any file as its backing). Backing files take their format from the header's
 * backing-format extension or from the caller, and the chain is bounded and loop-free.
 */
import { VirtkitError } from '../../util/errors.js';
import type { ByteSource } from './byte-source.js';
import { HostFile } from './host-file.js';
import { RawImage } from './raw.js';
import { ImageFormats, type Image, type ImageFormat, type ImageInfo } from './types.js';

/** Deepest backing chain we follow (the image itself is depth 0). */
export const MAX_CHAIN_DEPTH = 64;

export interface OpenImageOptions {
  /** The image's format. Required: formats are never probed. */
  readonly format: ImageFormat | string;
  /** Format of the image's direct backing file when its header does not record one. */
  readonly backingFormat?: ImageFormat | string;
  /** The image file is read on the calling thread (HostFileOptions.blockingReads); backing files are not. */
  readonly blockingReads?: boolean;
}

export function isImageFormat(format: string): format is ImageFormat {
  return (ImageFormats as readonly string[]).includes(format);
}

export async function openImage(path: string, options: OpenImageOptions): Promise<Image> {
  checkFormat(path, options.format);
  // The top image may be a block device (an LV holding a disk); a backing file must be a regular file.
  const file = await HostFile.open(path, { allowBlockDevice: true, blockingReads: options.blockingReads === true });
  return openLayer(file, options.format, options.backingFormat, 0, new Set(), openBackingFile);
}

/**
 * The header facts of one image (`img info` without `--backing-chain`), without opening its
 * backing file: like `qemu-img info`, it works when the backing file is missing or its format
 * unrecorded. Nothing is read through the layer, so the absent backing cannot show as zeros.
 */
export async function inspectImage(path: string, options: Pick<OpenImageOptions, 'format'>): Promise<ImageInfo> {
  checkFormat(path, options.format);
  const file = await HostFile.open(path, { allowBlockDevice: true });
  const img = await openLayer(file, options.format, undefined, 0, new Set(), openBackingFile, false);
  try {
    return img.info();
  } finally {
    await img.close();
  }
}

/** Opens the file a backing file (or a VMDK extent) name resolved to: a regular file. Tests substitute in-memory sources. */
export type BackingOpener = (path: string) => Promise<ByteSource>;

const openBackingFile: BackingOpener = (path) => HostFile.open(path, { allowBlockDevice: false });

/**
 * Open an image over an already-opened source (which the image then owns). Backing files are
 * opened through `openBacking`, host files by default.
 */
export async function openImageSource(source: ByteSource, options: OpenImageOptions,
  openBacking: BackingOpener = openBackingFile): Promise<Image> {
  try {
    checkFormat(source.path, options.format);
  } catch (err) {
    await source.close();
    throw err;
  }
  return openLayer(source, options.format, options.backingFormat, 0, new Set(), openBacking);
}

function checkFormat(path: string, format: string): asserts format is ImageFormat {
  if (!isImageFormat(format)) {
    throw new VirtkitError('image.unsupported', `image format '${format}' is not supported (${ImageFormats.join(', ')} are)`,
      { path, field: 'format', format });
  }
}

async function openLayer(file: ByteSource, format: ImageFormat, backingFormat: string | undefined, depth: number,
  seen: Set<string>, openBacking: BackingOpener, withBacking = true): Promise<Image> {
  const path = file.path;
  try {
    if (seen.has(file.identity)) {
      throw new VirtkitError('image.unsupported', `backing chain loops back to '${path}'`, { path, field: 'backing_file', depth });
    }
    seen.add(file.identity);
    if (format === 'raw') return RawImage.fromFile(file);
    // The other formats' readers are imported when an image of theirs is opened: a command
    // reading a raw image loads none of them (docs/performance.md, "CLI start-up").
    if (format === 'vmdk') return await (await import('./vmdk.js')).VmdkImage.open(file, openBacking);
    if (format === 'vdi') return await (await import('./vdi.js')).VdiImage.open(file);
    const { Qcow2Image, resolveBackingPath } = await import('./qcow2.js');
    return await Qcow2Image.open(file, {
      openBacking: async (header) => {
        if (header.backingFile === null || !withBacking) return null;
        const name = header.backingFile;
        if (/^[a-z][a-z0-9+.-]*:/i.test(name) && !name.startsWith('file:')) {
          throw new VirtkitError('image.unsupported', `backing file '${name}' of '${path}' is not a local file`,
            { path, field: 'backing_file', backingFile: name });
        }
        const fmt = header.backingFormat ?? backingFormat;
        if (fmt === undefined) {
          throw new VirtkitError('image.unsupported',
            `'${path}' does not record its backing file's format; name it (backing format for '${name}')`,
            { path, field: 'backing_format', backingFile: name });
        }
        if (depth + 1 > MAX_CHAIN_DEPTH) {
          throw new VirtkitError('image.unsupported', `backing chain of '${path}' is deeper than ${MAX_CHAIN_DEPTH}`,
            { path, field: 'backing_file', depth: depth + 1 });
        }
        const backingPath = resolveBackingPath(path, name);
        checkFormat(backingPath, fmt);
        return openLayer(await openBacking(backingPath), fmt, undefined, depth + 1, seen, openBacking);
      },
    });
  } catch (err) {
    await file.close();
    throw err;
  }
}
