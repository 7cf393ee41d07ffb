/** qemu/screens: screenshots (PPM -> PNG), keys, the VNC password. */
export { parsePpm, MaxScreenPixels, type RgbImage } from './ppm.js';
export { encodePng, pngSize, crc32 } from './png.js';
export { MaxKeys, Qcodes, parseKeys, qcodeOf } from './keys.js';
export { randomVncPassword, screendumpPath, sendKeys, setVncPassword, takeScreenshot, type Screenshot, type UntypedQmp } from './qmp.js';
