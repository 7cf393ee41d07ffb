/** storage/block/: the block device abstraction every image reader and filesystem reader stands on. */
export * from './device.js';
