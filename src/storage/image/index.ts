export { openImage, openImageSource, inspectImage, type BackingOpener, isImageFormat, MAX_CHAIN_DEPTH, type OpenImageOptions } from './open.js';
export { RawImage } from './raw.js';
export { Qcow2Image, resolveBackingPath } from './qcow2.js';
export { parseQcow2Header, type Qcow2Header } from './qcow2-header.js';
export { ImageFormats, type Image, type ImageFormat, type ImageInfo, type MapExtent } from './types.js';
export { MemorySource, type ByteSource } from './byte-source.js';
export { VmdkImage } from './vmdk.js';
export { parseVmdkDescriptor } from './vmdk-descriptor.js';
export { VdiImage } from './vdi.js';
