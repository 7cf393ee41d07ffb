/**
 * The contract table of docs/api.md ("Preconditions, access classes, long operations"),
 * rendered from the method table and the stream specs. `contract-docs.test.ts` fails when the
 * page is stale; `VIRTKIT_REGENERATE=1 npx vitest run src/api/contract-docs.test.ts` rewrites it.
 */
import { StreamSpecs } from './access.js';
import { Methods, type MethodSpec } from './methods.js';
import { DomainStates } from './schemas.js';

function statesCell(spec: MethodSpec): string {
  if (spec.states === null) return '';
  if (spec.states === 'any') return 'any';
  const base = spec.states.join(', ');
  return spec.forceStates ? `${base} (${spec.forceStates.length === DomainStates.length ? 'any' : spec.forceStates.join(', ')} with \`force=true\`)` : base;
}

export function renderContractTable(): string {
  const rows = (Object.entries(Methods) as [string, MethodSpec][]).map(([name, spec]) =>
    `| \`${name}\` | \`${spec.http} ${spec.path.replace(/:([A-Za-z]+)/g, '{$1}')}\` | ${statesCell(spec)} | ${spec.access} | ${spec.long ? 'yes' : ''} |`);
  const streams = Object.entries(StreamSpecs).map(([name, spec]) => `| \`${name}\` | stream | | ${spec.access} | ${spec.long ? 'yes' : ''} |`);
  return ['| method | route | accepted states | access | long |', '|---|---|---|---|---|', ...rows, ...streams].join('\n');
}
