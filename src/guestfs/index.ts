/**
 * guestfs/: reading guest disks without booting them: partition tables, ext2/3/4, ISO 9660
 * and FAT readers, inspection, boot-loader configurations, and resolving a command's TARGET
 * (an image file, `image:N`, or a defined guest's disk) to an open filesystem.
 */
export * from './target.js';
export * from './walk.js';
export * from './inspect.js';
export * from './glob.js';
export * from './fs/index.js';
export * from './partition/index.js';
export * from './boot/index.js';
