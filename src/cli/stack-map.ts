/**
 * Stack traces in source terms. A bundled verb (dist/cli/*.cjs) runs without Node's source
 * map support, which would read and parse the map of every bundle at start-up; instead, the
 * one place that prints a stack (an internal error) maps its frames here, through the `.map`
 * file the build wrote beside each bundle. A frame in a file without a map is left as it is.
 */
import { existsSync, readFileSync } from 'node:fs';
import { SourceMap, type SourceMapPayload } from 'node:module';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

function loadMap(file: string): SourceMap | undefined {
  const mapFile = `${file}.map`;
  if (!existsSync(mapFile)) return undefined;
  try {
    return new SourceMap(JSON.parse(readFileSync(mapFile, 'utf8')) as SourceMapPayload);
  } catch {
    return undefined;
  }
}

/** `stack` with each `FILE:LINE:COLUMN` whose FILE has a FILE.map rewritten to its source position. */
export function sourceMappedStack(stack: string): string {
  const maps = new Map<string, SourceMap | undefined>();
  return stack.replace(/((?:file:\/\/)?\/[^\s()]+):(\d+):(\d+)/g, (whole: string, location: string, line: string, column: string) => {
    const file = location.startsWith('file://') ? fileURLToPath(location) : location;
    if (!maps.has(file)) maps.set(file, loadMap(file));
    const entry = maps.get(file)?.findEntry(Number(line) - 1, Number(column) - 1);
    if (entry === undefined || !('originalSource' in entry)) return whole;
    const source = entry.originalSource.startsWith('file:') ? fileURLToPath(entry.originalSource) : resolve(dirname(file), entry.originalSource);
    return `${source}:${entry.originalLine + 1}:${entry.originalColumn + 1}`;
  });
}
