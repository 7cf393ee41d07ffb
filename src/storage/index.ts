/** storage/: the block layer (native image readers), the qemu-img wrapper and the NBD export. */
export * from './block/index.js';
export * from './image/index.js';
export * from './qemu-img.js';
export * from './nbd/index.js';
