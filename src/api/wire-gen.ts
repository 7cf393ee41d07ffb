/**
 * Renders `src/api/wire/index.ts`: what a client needs of the contract to make a call (each
 * method's HTTP verb and route, the stream paths and close codes) as plain literals, without
 * the TypeBox schemas of the method table. A client command (`virtkit list`) then starts
 * without loading TypeBox at all (docs/performance.md, CLI start-up).
 *
 * The file is generated, like the docs tables: `VIRTKIT_REGENERATE=1 npx vitest run
 * src/api/contract-docs.test.ts` rewrites it with docs/api.md, and that test fails on drift.
 */
import { Methods, StreamCloseCodes, StreamPaths, type MethodSpec } from './methods.js';
import { ObservabilityPaths } from './observability.js';
import { VolumeContentPath, VolumeInUseHeader } from './pools.js';

export const WireFile = 'src/api/wire/index.ts';

function literal(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(/"([A-Za-z_][A-Za-z0-9_]*)":/g, '$1:').replaceAll('"', "'");
}

export function renderWireModule(): string {
  const routes = Object.entries(Methods as Record<string, MethodSpec>).map(([name, spec]) =>
    `  '${name}': { http: '${spec.http}', path: '${spec.path}'${spec.body ? ', body: true' : ''} },`);
  return `/**
 * GENERATED from the method table by src/api/wire-gen.ts: do not edit. After changing the
 * table run \`VIRTKIT_REGENERATE=1 npx vitest run src/api/contract-docs.test.ts\`.
 *
 * What a client needs to make a call, as plain literals: no TypeBox, so a client command
 * starts without loading the schemas (docs/performance.md).
 */
import type { MethodName } from '../methods.js';

// The contract's other plain-value modules a client needs (they import no schema).
export { codeForStatus, httpStatusOf } from '../http-status.js';
export { managerDirs } from '../paths.js';
// The RPC channel's frames and constants (hand-written: they do not come from the table).
export * from './rpc.js';

export interface WireRoute {
  readonly http: 'GET' | 'POST' | 'PUT' | 'DELETE';
  readonly path: string;
  /** The method takes a JSON body. */
  readonly body?: true;
}

export const Routes: Readonly<Record<MethodName, WireRoute>> = {
${routes.join('\n')}
};

export const StreamPaths = ${literal(StreamPaths)} as const;

export const StreamCloseCodes = ${literal(StreamCloseCodes)} as const;

export const ObservabilityPaths = ${literal(ObservabilityPaths)} as const;

export const VolumeContentPath = '${VolumeContentPath}';
export const VolumeInUseHeader = '${VolumeInUseHeader}';

/** Fill \`:name\` placeholders of a route. */
export function routePath(path: string, params: Record<string, string> = {}): string {
  return path.replace(/:([A-Za-z]+)/g, (_m, key: string) => {
    const v = params[key];
    if (v === undefined) throw new TypeError(\`missing route parameter \${key}\`);
    return encodeURIComponent(v);
  });
}
`;
}
