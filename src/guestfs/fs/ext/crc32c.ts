/** CRC32C (Castagnoli), the checksum of ext4's metadata_csum feature. */
const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

/** The raw CRC register update, without the customary final inversion (ext4 stores it so). */
export function crc32cUpdate(crc: number, data: Uint8Array): number {
  let c = crc >>> 0;
  for (const b of data) c = TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return c >>> 0;
}
