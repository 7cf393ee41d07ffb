/**
 * `virtkit`: the package's main entry. The definition model (parse, validate, format),
 * the typed errors, and the API client; the client alone is also `virtkit/client`.
 * Nothing here loads the daemon's HTTP server or SQLite: a program that only talks to a
 * manager, or only checks definitions, pays for neither.
 *
 *   import { loadDefinition, connect } from 'virtkit';
 *   const def = await loadDefinition('./guest.yaml');
 *   const c = connect();
 *   await c.define(...);
 */
export * from './conf/index.js';
export { ErrorCodes, VirtkitError, isVirtkitError, type ErrorCode, type ErrorData } from './util/errors.js';
export { connect, defaultSocketPath, VirtkitClient } from './client/index.js';
