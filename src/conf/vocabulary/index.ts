/**
 * The definition's fixed word lists (disk formats and buses, NIC models...), for layers that
 * must not load the rest of conf/: the API contract is part of the browser entry
 * (`virtkit/client/browser`), and conf/index.ts brings in the file readers and validation,
 * which use Node's modules. The lists themselves live in the schema.
 */
export { CacheModes, DiskBuses, DiskFormats, NicModels } from '../schema.js';
