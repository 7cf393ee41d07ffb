/** Guest memory dumps: the reader behind `virtkit dump-info` (docs/dumps.md). */
export { readDumpFile, readDumpInfo, bufferSource, parseVmcoreinfo, type ByteSource, type CpuState, type DumpInfo, type MemoryRange } from './core-file.js';
export { buildElfCore, type ElfCoreSpec } from './elf-writer.js';
