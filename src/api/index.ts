/** The API contract: method table, schemas, error-code -> HTTP status map, OpenAPI document. */
export * from './schemas.js';
export * from './methods.js';
export * from './http-status.js';
export * from './openapi.js';
export * from './paths.js';
export * from './pools.js';
export * from './networks.js';
export * from './host-resources.js';
export * from './guest-state.js';
export * from './devices.js';
export * from './observability.js';
export * from './web.js';
export * from './access.js';
export * from './preconditions.js';
export * from './error-meanings.js';
