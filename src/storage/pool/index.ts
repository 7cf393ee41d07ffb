/** storage/pool: directory pools and their volumes (docs/pools.md). Usable without the daemon. */
export * from './names.js';
export * from './dir-pool.js';
export * from './definitions.js';
export * from './in-use.js';
