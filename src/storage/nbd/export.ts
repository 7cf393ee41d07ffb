import type { BlockDevice } from '../block/index.js';
import type { BlockWriter } from './snapshot-overlay.js';

/** What one NBD server offers: a single named export of one device. */
export interface NbdExport {
  /** The export name clients ask for (`""` is the default export of qemu-nbd and qemu's clients). */
  readonly name: string;
  readonly description?: string;
  readonly device: BlockDevice;
  /** Present only in snapshot mode: where writes go. Without it every write gets EPERM. */
  readonly writer?: BlockWriter;
  /** More than one client may be connected at once (advertised as NBD_FLAG_CAN_MULTI_CONN). */
  readonly multiConn: boolean;
}

/** Largest payload of a read or write request: bigger ones are refused without allocating. */
export const MAX_REQUEST_PAYLOAD = 32 * 1024 * 1024;
/** Block sizes advertised with NBD_INFO_BLOCK_SIZE. */
export const MIN_BLOCK_SIZE = 1;
export const PREFERRED_BLOCK_SIZE = 4096;
