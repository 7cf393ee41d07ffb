/** definitionDiffers: what a start resolves (vhost: auto, a user-mode network) is not a pending change. */
import { expect, it } from 'vitest';
import { validateDefinition } from '../conf/index.js';
import { definitionDiffers } from './domain-records.js';

const saved = validateDefinition({ name: 'g', memory: '64MiB', nics: [{ network: 'lab' }, { network: 'slirp' }, { network: 'lab', vhost: 'auto' }] });

it('a live definition with vhost: auto resolved and a user-mode network as user does not differ', () => {
  const live = { ...saved, nics: [{ ...saved.nics[0]!, vhost: 'off' as const }, { ...saved.nics[1]!, network: 'user' }, { ...saved.nics[2]!, vhost: 'on' as const }] };
  expect(definitionDiffers({ definition: saved, live })).toBe(false);
});

it('a real change still differs: memory, a vhost asked for, another network', () => {
  expect(definitionDiffers({ definition: saved, live: { ...saved, memory: saved.memory * 2 } })).toBe(true);
  const pinned = validateDefinition({ name: 'g', memory: '64MiB', nics: [{ network: 'lab', vhost: 'on' }] });
  const asked = { ...pinned, nics: [{ ...pinned.nics[0]!, vhost: 'off' as const }] };
  expect(definitionDiffers({ definition: pinned, live: asked })).toBe(true);
  expect(definitionDiffers({ definition: saved, live: { ...saved, nics: [{ ...saved.nics[0]!, network: 'other' }, ...saved.nics.slice(1)] } })).toBe(true);
});
