/** NBD export of any BlockDevice: the server, its URI, the snapshot overlay. */
export { NbdServer, nbdUri, type NbdListen, type NbdServerOptions, type NbdWriteMode } from './server.js';
export { serveConnection, DEFAULT_HANDSHAKE_TIMEOUT_MS, type ConnectionEnd, type ConnectionOptions } from './connection.js';
export { SnapshotOverlay, type BlockWriter } from './snapshot-overlay.js';
export { MAX_REQUEST_PAYLOAD, type NbdExport } from './export.js';
