export { chooseImageFormat, FormatByExtension, type FormatChoice, type FormatChoiceOptions } from './format-choice.js';
export { openImage, openImageSource, inspectImage, type BackingOpener, isImageFormat, MAX_CHAIN_DEPTH, type OpenImageOptions } from './open.js';
export { RawImage } from './raw.js';
// The qcow2, VMDK and VDI readers are not re-exported: openImage imports each when an image of
// its format is opened, and a re-export here would load them all with this face
// (docs/performance.md, "CLI start-up").
export { parseQcow2Header, type Qcow2Header } from './qcow2-header.js';
export { ImageFormats, type Image, type ImageFormat, type ImageInfo, type MapExtent } from './types.js';
export { MemorySource, type ByteSource } from './byte-source.js';
export { parseVmdkDescriptor } from './vmdk-descriptor.js';
