/**
 * Read-only guest filesystems: the `Filesystem` interface, detection by signature and the
 * built-in readers. A new reader exports a `FilesystemType` and is added to the list below.
 */
import { extFilesystem } from './ext/index.js';
import { fatFilesystem } from './fat/index.js';
import { iso9660Filesystem } from './iso9660/index.js';
import { registerFilesystem } from './registry.js';

export const builtinFilesystems = [extFilesystem, iso9660Filesystem, fatFilesystem] as const;
for (const t of builtinFilesystems) registerFilesystem(t);

export { detectFilesystem, openFilesystem, registerFilesystem, registeredFilesystems, type FilesystemType } from './registry.js';
export { PathFilesystem, inodeReference, joinPath, splitPath } from './path.js';
export * from './types.js';
export { decodeName, hasInvalidBytes, nameBytes } from './name-bytes.js';
