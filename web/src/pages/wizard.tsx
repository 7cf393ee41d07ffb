/**
 * The create-guest wizard: boot files, memory and vCPUs, a disk (none, a pool volume, a new
 * volume, or an upload), NICs, graphics; then define and start. The daemon validates with the
 * definition schema and its error lands at the field it names (`data.path`), on its step.
 */
import { useEffect, useState } from 'preact/hooks';
import type { PoolSummary, VolumeInfo } from 'virtkit/client/browser';
import { ErrorBox, shownError, type ShownError } from '../components/errors';
import { Field, fieldId } from '../components/field';
import { EmptyForm, defineAndStart, definitionOf, errorAt, localProblems, startErrorPath, stepOfPath, stepProblems, type DiskChoice, type WizardForm } from '../forms';
import { href, useTitle } from '../router';
import { client } from '../session';

const Steps = ['Boot', 'Resources', 'Disk', 'Devices', 'Review'];

export function Wizard() {
  useTitle('New guest');
  const [form, setForm] = useState<WizardForm>(EmptyForm);
  const [step, setStep] = useState(0);
  const [error, setError] = useState<ShownError>();
  const [progress, setProgress] = useState('');
  const [pools, setPools] = useState<PoolSummary[]>([]);
  const [volumes, setVolumes] = useState<VolumeInfo[]>([]);
  const [upload, setUpload] = useState<File>();
  const [networks, setNetworks] = useState<string[]>([]);
  useEffect(() => { client.poolList().then((p) => setPools(p.pools), () => undefined); }, []);
  // Defined networks (net-list --all); an inactive one is marked, since a guest's start needs it active.
  useEffect(() => { client.networkList({ all: true }).then((n) => setNetworks(n.networks.map((x) => (x.active ? x.name : `${x.name} (inactive)`))), () => undefined); }, []);
  useEffect(() => {
    if (form.pool) client.volumeList(form.pool).then((v) => setVolumes(v.volumes), () => setVolumes([]));
  }, [form.pool]);
  const set = <K extends keyof WizardForm>(key: K, value: WizardForm[K]): void => setForm({ ...form, [key]: value });
  const fail = (e: ShownError): void => {
    setError(e);
    setProgress('');
    if (e.path) setStep(stepOfPath(e.path));
  };
  const create = async (): Promise<void> => {
    const local = localProblems(form);
    if (local) { fail(local); return; }
    setError(undefined);
    try {
      let def = definitionOf(form);
      if (form.disk === 'new' || form.disk === 'upload') {
        const name = form.disk === 'upload' ? (upload?.name.replace(/[^A-Za-z0-9_.+-]/g, '_') ?? `${form.name}.img`) : form.volume;
        setProgress(`creating volume ${form.pool}/${name}`);
        const format = form.disk === 'upload' ? 'raw' : 'qcow2';
        await client.volumeCreate(form.pool, { name, capacity: form.disk === 'upload' ? (upload?.size ?? 0) : form.newVolumeMiB * 2 ** 20, format });
        if (form.disk === 'upload' && upload) {
          await client.uploadVolume(form.pool, name, upload, (done, total) => setProgress(`uploading ${Math.round((100 * done) / Math.max(1, total))}%`));
        }
        def = { ...def, disks: [{ volume: `${form.pool}/${name}`, format }] };
      }
      try {
        await defineAndStart(form, def, client, setProgress);
      } catch (e) {
        // A start failure (qemu.failed-to-start: a kernel that does not exist) shows at the boot
        // file it names; the guest was undefined again, so the corrected form can be retried.
        const shown = shownError(e);
        const path = shown.path ?? (shown.code === 'definition.invalid' ? undefined : startErrorPath(form, shown.message));
        fail(path !== undefined ? { ...shown, path } : shown);
        return;
      }
      location.hash = href('guests', form.name, form.start ? 'console' : 'overview');
    } catch (e) {
      fail(shownError(e));
    }
  };
  const stepError = (i: number): boolean => error?.path !== undefined && stepOfPath(error.path) === i;
  return (
    <section>
      <h1>New guest</h1>
      <ol class="steps" aria-label="Steps">
        {Steps.map((s, i) => (
          <li aria-current={i === step ? 'step' : undefined} class={stepError(i) ? 'bad' : ''}>
            <button type="button" onClick={() => setStep(i)}>{i + 1}. {s}</button>
          </li>
        ))}
      </ol>
      <form onSubmit={(e) => {
        e.preventDefault();
        if (step === Steps.length - 1) { void create(); return; }
        // Next checks its own step's fields, so a mistake shows where it was made.
        const problem = stepProblems(form, step);
        if (problem) { setError(problem); return; }
        setError(undefined);
        setStep(step + 1);
      }} noValidate>
        {step === 0 ? (
          <fieldset>
            <legend>Boot</legend>
            <Field label="Name" path="name" error={error}>
              <input id={fieldId('name')} required value={form.name} onInput={(e) => set('name', e.currentTarget.value)} aria-invalid={errorAt(error, 'name') ? 'true' : 'false'} />
            </Field>
            <Field label="Kernel (host path)" path="boot.kernel" error={error} hint="e.g. the guest kit's vmlinuz">
              <input id={fieldId('boot.kernel')} value={form.kernel} onInput={(e) => set('kernel', e.currentTarget.value)} aria-invalid={errorAt(error, 'boot.kernel') ? 'true' : 'false'} />
            </Field>
            <Field label="Initrd (host path)" path="boot.initrd" error={error}>
              <input id={fieldId('boot.initrd')} value={form.initrd} onInput={(e) => set('initrd', e.currentTarget.value)} />
            </Field>
            <Field label="Kernel command line" path="boot.cmdline" error={error}>
              <input id={fieldId('boot.cmdline')} value={form.cmdline} onInput={(e) => set('cmdline', e.currentTarget.value)} />
            </Field>
          </fieldset>
        ) : null}
        {step === 1 ? (
          <fieldset>
            <legend>Resources</legend>
            <Field label="Memory (MiB)" path="memory" error={error}>
              <input id={fieldId('memory')} type="number" min={16} step={1} value={form.memoryMiB} onInput={(e) => set('memoryMiB', Number(e.currentTarget.value))} aria-invalid={errorAt(error, 'memory') ? 'true' : 'false'} />
            </Field>
            <Field label="vCPUs" path="vcpus" error={error}>
              <input id={fieldId('vcpus')} type="number" min={1} max={255} value={form.vcpus} onInput={(e) => set('vcpus', Number(e.currentTarget.value))} aria-invalid={errorAt(error, 'vcpus') ? 'true' : 'false'} />
            </Field>
          </fieldset>
        ) : null}
        {step === 2 ? (
          <fieldset>
            <legend>Disk</legend>
            <Field label="Disk" path="disks" error={error}>
              <select id={fieldId('disks')} value={form.disk} onChange={(e) => set('disk', e.currentTarget.value as DiskChoice)}>
                <option value="none">no disk</option>
                <option value="volume">an existing volume</option>
                <option value="new">a new empty volume (qcow2)</option>
                <option value="upload">upload an image (raw)</option>
              </select>
            </Field>
            {form.disk !== 'none' ? (
              <Field label="Pool" path="disks.pool" error={error}>
                <select id={fieldId('disks.pool')} value={form.pool} onChange={(e) => set('pool', e.currentTarget.value)}>
                  <option value="">choose a pool</option>
                  {pools.map((p) => <option value={p.name}>{p.name}</option>)}
                </select>
              </Field>
            ) : null}
            {form.disk === 'volume' ? (
              <Field label="Volume" path="disks.volume" error={error}>
                <select id={fieldId('disks.volume')} value={form.volume} onChange={(e) => {
                  const v = volumes.find((x) => x.name === e.currentTarget.value);
                  setForm({ ...form, volume: e.currentTarget.value, format: v?.format === 'raw' ? 'raw' : 'qcow2' });
                }}>
                  <option value="">choose a volume</option>
                  {volumes.map((v) => <option value={v.name}>{v.name} ({v.format}, {Math.round(v.capacity / 2 ** 20)} MiB)</option>)}
                </select>
              </Field>
            ) : null}
            {form.disk === 'new' ? (
              <>
                <Field label="Volume name" path="disks.name" error={error}>
                  <input id={fieldId('disks.name')} value={form.volume} onInput={(e) => set('volume', e.currentTarget.value)} />
                </Field>
                <Field label="Size (MiB)" path="disks.capacity" error={error}>
                  <input id={fieldId('disks.capacity')} type="number" min={1} value={form.newVolumeMiB} onInput={(e) => set('newVolumeMiB', Number(e.currentTarget.value))} />
                </Field>
              </>
            ) : null}
            {form.disk === 'upload' ? (
              <Field label="Image file" path="disks.file" error={error}>
                <input id={fieldId('disks.file')} type="file" onChange={(e) => setUpload(e.currentTarget.files?.[0])} />
              </Field>
            ) : null}
          </fieldset>
        ) : null}
        {step === 3 ? (
          <fieldset>
            <legend>Devices</legend>
            <Field label="Network interfaces" path="nics" error={error} hint="user: QEMU's user-mode NAT; or a virtkit network (net-list)">
              <div id={fieldId('nics')}>
                {form.nics.map((n, i) => (
                  <div class="row">
                    <select aria-label={`NIC ${i + 1} model`} value={n.model} onChange={(e) => set('nics', form.nics.map((x, j) => (j === i ? { ...x, model: e.currentTarget.value as WizardForm['nics'][number]['model'] } : x)))}>
                      <option>virtio</option><option>e1000</option><option>rtl8139</option>
                    </select>
                    <select aria-label={`NIC ${i + 1} network`} value={n.network ?? 'user'} onChange={(e) => set('nics', form.nics.map((x, j) => (j === i ? { ...x, network: e.currentTarget.value } : x)))}>
                      <option value="user">user networking</option>
                      {networks.map((label) => { const name = label.split(' ')[0]!; return <option value={name}>network {label}</option>; })}
                    </select>
                    <button type="button" onClick={() => set('nics', form.nics.filter((_, j) => j !== i))}>Remove</button>
                  </div>
                ))}
                <button type="button" onClick={() => set('nics', [...form.nics, { model: 'virtio' }])}>Add a NIC</button>
              </div>
            </Field>
            <Field label="Graphics" path="graphics" error={error}>
              <select id={fieldId('graphics')} value={form.graphics} onChange={(e) => set('graphics', e.currentTarget.value as 'none' | 'vnc')}>
                <option value="none">none (serial console only)</option>
                <option value="vnc">VNC (graphical console in the page)</option>
              </select>
            </Field>
          </fieldset>
        ) : null}
        {step === 4 ? (
          <fieldset>
            <legend>Review</legend>
            <pre class="review" data-testid="review">{JSON.stringify(definitionOf(form), null, 2)}</pre>
            <label class="inline"><input type="checkbox" checked={form.start} onChange={(e) => set('start', e.currentTarget.checked)} /> Start it now</label>
          </fieldset>
        ) : null}
        <ErrorBox error={error} />
        {progress ? <p role="status" class="notice">{progress}…</p> : null}
        <div class="toolbar">
          <button type="button" disabled={step === 0} onClick={() => setStep(step - 1)}>Back</button>
          <button type="submit" class="primary">{step < Steps.length - 1 ? 'Next' : form.start ? 'Create and start' : 'Create'}</button>
        </div>
      </form>
    </section>
  );
}
