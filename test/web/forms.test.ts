/**
 * The web manager's form logic (web/src/forms.ts): the wizard's definition is one the schema
 * accepts; a schema error (from the same parser the daemon runs) lands on the step and field
 * it names; the editor marks the line of an error's path; the pending-changes diff; and the
 * hash router. Fuzzed where the input is the user's or the daemon's text.
 */
import { describe, expect, it } from 'vitest';
import { parseDefinition } from '../../src/conf/index.js';
import { isVirtkitError } from '../../src/util/errors.js';
import { EmptyForm, defineAndStart, definitionOf, errorAt, lineDiff, lineOfPath, localProblems, startErrorPath, stepOfPath, stepProblems, type WizardForm } from '../../web/src/forms.js';
import { VirtkitError } from '../../src/util/errors.js';
import { parseRoute } from '../../web/src/router.js';

const form = (over: Partial<WizardForm>): WizardForm => ({ ...EmptyForm, name: 'demo', kernel: '/boot/vmlinuz', ...over });

/** The schema's error for a form, as the daemon would answer it. */
function schemaError(f: WizardForm): { code: string; message: string; path: string } | undefined {
  try {
    parseDefinition(JSON.stringify(definitionOf(f)), { format: 'json' });
    return undefined;
  } catch (err) {
    if (!isVirtkitError(err, 'definition.invalid')) throw err;
    return { code: err.code, message: err.message, path: String(err.data.path) };
  }
}

describe('the create-guest wizard', () => {
  it('describes a definition the schema accepts, NICs and a pool volume included', () => {
    expect(schemaError(form({}))).toBeUndefined();
    const full = form({ memoryMiB: 256, vcpus: 2, nics: [{ model: 'e1000' }], disk: 'volume', pool: 'images', volume: 'disk0.qcow2', format: 'qcow2', graphics: 'vnc' });
    expect(schemaError(full)).toBeUndefined();
    expect(definitionOf(full)).toMatchObject({ memory: '256MiB', disks: [{ volume: 'images/disk0.qcow2', format: 'qcow2' }], nics: [{ model: 'e1000' }], graphics: 'vnc' });
  });

  it('puts a schema error on the step and the field it names', () => {
    const cases: [Partial<WizardForm>, string, number][] = [
      [{ name: '-bad' }, 'name', 0],
      [{ memoryMiB: 8 }, 'memory', 1],
      [{ vcpus: 0 }, 'vcpus', 1],
      [{ disk: 'volume', pool: 'images', volume: 'bad/name', format: 'raw' }, 'disks', 2],
    ];
    for (const [over, field, step] of cases) {
      const error = schemaError(form(over));
      expect(error, field).toBeDefined();
      expect(errorAt(error, field), field).toBe(error!.message);
      expect(stepOfPath(error!.path), field).toBe(step);
      // ...and at no other field of the wizard.
      for (const other of ['name', 'memory', 'vcpus', 'boot.kernel', 'disks', 'nics', 'graphics'].filter((f) => f !== field)) {
        expect(errorAt(error, other), `${field} vs ${other}`).toBeUndefined();
      }
    }
  });

  it('checks in the browser what needs no daemon, with the same paths', () => {
    expect(localProblems(form({}))).toBeUndefined();
    expect(localProblems(form({ name: '' }))?.path).toBe('name');
    expect(localProblems(form({ kernel: ' ' }))?.path).toBe('boot.kernel');
    expect(localProblems(form({ memoryMiB: 15 }))?.path).toBe('memory');
    expect(localProblems(form({ disk: 'volume', pool: '' }))?.path).toBe('disks');
  });
});

describe('the definition editor', () => {
  const yaml = 'name: demo\nmemory: 128MiB\nvcpus: 1\nboot:\n  loader: direct\n  kernel: /k\nnics:\n  - id: net0\n    model: virtio\n';

  it('marks the line of an error path, nested and in lists', () => {
    expect(lineOfPath(yaml, 'vcpus')).toBe(2);
    expect(lineOfPath(yaml, 'boot.kernel')).toBe(5);
    expect(lineOfPath(yaml, 'nics[0].model')).toBe(8);
    expect(lineOfPath(yaml, 'nowhere')).toBe(-1);
  });

  it('shows the lines a restart would change', () => {
    expect(lineDiff(yaml, yaml)).toEqual([]);
    expect(lineDiff(yaml, yaml.replace('vcpus: 1', 'vcpus: 2'))).toEqual([{ sign: '-', text: 'vcpus: 1' }, { sign: '+', text: 'vcpus: 2' }]);
  });

  it('never throws on any text and path (fuzz, bounded)', () => {
    let seed = 12;
    const rand = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed % n; };
    const alphabet = 'ab:.[]0 -\n\\()*+?{}|^$';
    const text = (len: number): string => Array.from({ length: len }, () => alphabet[rand(alphabet.length)]).join('');
    for (let i = 0; i < 3000; i++) {
      const t = text(rand(80));
      const line = lineOfPath(t, text(rand(20)));
      expect(line).toBeGreaterThanOrEqual(-1);
      expect(line).toBeLessThan(t.split('\n').length);
      const other = text(rand(40));
      const diff = lineDiff(t, other);
      expect(diff.filter((d) => d.sign === '+').length).toBeLessThanOrEqual(other.split('\n').length);
    }
  });
});

describe('the hash router', () => {
  it('maps hashes to views', () => {
    expect(parseRoute('')).toEqual({ view: 'overview' });
    expect(parseRoute('#/guests')).toEqual({ view: 'guests' });
    expect(parseRoute('#/guests/web%201/console')).toEqual({ view: 'guest', name: 'web 1', tab: 'console' });
    expect(parseRoute('#/guests/demo')).toEqual({ view: 'guest', name: 'demo', tab: 'overview' });
    expect(parseRoute('#/storage')).toEqual({ view: 'storage' });
  });

  it('takes any hash without throwing (fuzz, bounded)', () => {
    let seed = 7;
    const rand = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed % n; };
    const alphabet = '#/%guests0aZ.-_?&=';
    for (let i = 0; i < 3000; i++) {
      const hash = Array.from({ length: rand(30) }, () => alphabet[rand(alphabet.length)]).join('');
      expect(parseRoute(hash).view).toMatch(/^(overview|guests|guest|new|storage|events|snoop)$/);
    }
  });
});

describe('the wizard\'s submission and steps', () => {
  /** A daemon of one guest table: define refuses a name it has (domain.exists), start fails on a kernel named "missing". */
  function fakeDaemon() {
    const defined = new Set<string>();
    return {
      defined,
      async define(text: string) {
        const def = JSON.parse(text) as { name: string };
        if (defined.has(def.name)) throw new VirtkitError('domain.exists', `domain '${def.name}' already exists`, { name: def.name });
        defined.add(def.name);
      },
      async start(name: string) {
        if (kernelOf.get(name) === '/missing/vmlinuz') throw new VirtkitError('qemu.failed-to-start', "qemu: could not load kernel '/missing/vmlinuz'", { name });
      },
      async undefine(name: string) { defined.delete(name); },
    };
  }
  const kernelOf = new Map<string, string>();

  it('undefines what it defined when the start fails, so a corrected retry defines and starts', async () => {
    const api = fakeDaemon();
    const bad = form({ name: 'g1', kernel: '/missing/vmlinuz' });
    kernelOf.set('g1', bad.kernel);
    const err = await defineAndStart(bad, definitionOf(bad), api).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(VirtkitError);
    expect((err as VirtkitError).code).toBe('qemu.failed-to-start');
    expect(startErrorPath(bad, (err as VirtkitError).message)).toBe('boot.kernel');
    expect(api.defined.has('g1')).toBe(false);
    const good = form({ name: 'g1', kernel: '/boot/vmlinuz' });
    kernelOf.set('g1', good.kernel);
    await defineAndStart(good, definitionOf(good), api);
    expect(api.defined.has('g1')).toBe(true);
  });

  it('leaves a guest it did not define alone when its own define is refused', async () => {
    const api = fakeDaemon();
    api.defined.add('other');
    const f = form({ name: 'other' });
    await expect(defineAndStart(f, definitionOf(f), api)).rejects.toSatisfy((e: unknown) => isVirtkitError(e, 'domain.exists'));
    expect(api.defined.has('other')).toBe(true);
  });

  it('checks each step on Next: an empty kernel on Boot, 0 vCPUs on Resources', () => {
    expect(stepProblems(form({ kernel: '' }), 0)?.path).toBe('boot.kernel');
    expect(stepProblems(form({ vcpus: 0 }), 1)?.path).toBe('vcpus');
    expect(stepProblems(form({ vcpus: 0 }), 0)).toBeUndefined();
    expect(stepProblems(form({ name: '', vcpus: 0 }), 1)?.path).toBe('vcpus');
    expect(stepProblems(form({}), 1)).toBeUndefined();
  });

  it('puts a NIC on a virtkit network when one is chosen, on user networking otherwise', () => {
    const def = definitionOf(form({ nics: [{ model: 'virtio', network: 'lab' }, { model: 'e1000', network: 'user' }, { model: 'e1000' }] }));
    expect(def.nics).toEqual([{ model: 'virtio', network: 'lab' }, { model: 'e1000' }, { model: 'e1000' }]);
    expect(schemaError(form({ nics: [{ model: 'virtio', network: 'lab' }] }))).toBeUndefined();
  });
});
