/**
 * The logic of the forms, apart from their components (and free of the page's session), so it
 * is tested on its own (test/web/forms.test.ts): what the wizard's form defines, which step and
 * field a definition error belongs to, the line of the editor it points at, and the pending
 * changes between a saved and a live definition.
 */
/** A typed API error as the page shows it (components/errors.tsx). */
export interface ShownError {
  code: string;
  message: string;
  /** The definition field the error is about (`data.path` of definition.invalid). */
  path?: string;
}

/** Whether an error's definition path is this field's (`disks[0].volume` belongs to `disks`). */
export function errorAt(error: ShownError | undefined, path: string): string | undefined {
  if (!error?.path) return undefined;
  const p = error.path;
  return p === path || p.startsWith(`${path}.`) || p.startsWith(`${path}[`) ? error.message : undefined;
}

export type DiskChoice = 'none' | 'volume' | 'new' | 'upload';

export interface WizardForm {
  name: string;
  kernel: string;
  initrd: string;
  cmdline: string;
  memoryMiB: number;
  vcpus: number;
  disk: DiskChoice;
  pool: string;
  volume: string;
  newVolumeMiB: number;
  /** The disk's image format: the chosen volume's, qcow2 for a new one, raw for an upload. */
  format: 'raw' | 'qcow2';
  /** `network`: `user` (QEMU's user networking) or a virtkit network's name (net-list). */
  nics: { model: 'virtio' | 'e1000' | 'rtl8139'; network?: string }[];
  graphics: 'none' | 'vnc';
  start: boolean;
}

export const EmptyForm: WizardForm = {
  name: '', kernel: '', initrd: '', cmdline: 'console=ttyS0', memoryMiB: 128, vcpus: 1, disk: 'none', pool: '', volume: '', newVolumeMiB: 64, format: 'qcow2',
  nics: [], graphics: 'none', start: true,
};

/** The definition the form describes (JSON, which the daemon reads like YAML). */
export function definitionOf(f: WizardForm): Record<string, unknown> {
  return {
    name: f.name,
    memory: `${f.memoryMiB}MiB`,
    vcpus: f.vcpus,
    boot: { loader: 'direct', kernel: f.kernel, ...(f.initrd ? { initrd: f.initrd } : {}), ...(f.cmdline ? { cmdline: f.cmdline } : {}) },
    ...(f.disk !== 'none' ? { disks: [{ volume: `${f.pool}/${f.volume}`, format: f.disk === 'upload' ? 'raw' : f.disk === 'new' ? 'qcow2' : f.format }] } : {}),
    nics: f.nics.map((n) => ({ model: n.model, ...(n.network && n.network !== 'user' ? { network: n.network } : {}) })),
    graphics: f.graphics,
  };
}

/** Which step shows a definition path's field. */
export function stepOfPath(path: string): number {
  if (/^(memory|vcpus)/.test(path)) return 1;
  if (/^disks/.test(path)) return 2;
  if (/^(nics|graphics)/.test(path)) return 3;
  return 0;
}

/** Checks the browser can make before asking the daemon (the daemon checks everything again). */
export function localProblems(f: WizardForm): ShownError | undefined {
  const bad = (path: string, message: string): ShownError => ({ code: 'definition.invalid', message: `${path}: ${message}`, path });
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(f.name)) return bad('name', 'must be 1-64 letters, digits, "_", "." or "-", starting with a letter or digit');
  if (f.kernel.trim() === '') return bad('boot.kernel', 'a kernel image on the host is required');
  if (!Number.isInteger(f.memoryMiB) || f.memoryMiB < 16) return bad('memory', 'must be at least 16 MiB, a whole number');
  if (!Number.isInteger(f.vcpus) || f.vcpus < 1 || f.vcpus > 255) return bad('vcpus', 'must be 1 to 255');
  if (f.disk !== 'none' && (f.pool === '' || (f.disk !== 'upload' && f.volume === ''))) return bad('disks', 'choose a pool and a volume');
  return undefined;
}

/** The problem `localProblems` finds on one step of the wizard (what its Next checks), if any. */
export function stepProblems(f: WizardForm, step: number): ShownError | undefined {
  const p = localProblems(f);
  // localProblems stops at the first problem; a later step's does not hold this one back.
  if (p?.path !== undefined && stepOfPath(p.path) === step) return p;
  const only = { ...f };
  if (step !== 0) { only.name = only.name || 'x'; only.kernel = only.kernel || 'x'; }
  const again = localProblems(only);
  return again?.path !== undefined && stepOfPath(again.path) === step ? again : undefined;
}

/** What the wizard's submission asks of the daemon (the page's client, a fake in the tests). */
export interface WizardApi {
  define(text: string, opts: { format: 'json' }): Promise<unknown>;
  start(name: string): Promise<unknown>;
  undefine(name: string): Promise<unknown>;
}

/**
 * Defines the form's guest and, if asked, starts it. When the start fails, the definition this
 * submission made is undefined again (a corrected retry must not meet domain.exists), and the
 * start's error points at the boot file it names, so it shows at that field on the Boot step.
 */
export async function defineAndStart(f: WizardForm, def: Record<string, unknown>, api: WizardApi, progress: (what: string) => void = () => undefined): Promise<void> {
  progress('defining');
  await api.define(JSON.stringify(def), { format: 'json' });
  if (!f.start) return;
  progress('starting');
  try {
    await api.start(f.name);
  } catch (startError) {
    // Only what this submission defined: a define that failed threw above, before this.
    await api.undefine(f.name).catch(() => undefined);
    throw startError;
  }
}

/** The wizard field a start failure is about: the kernel or initrd path its message names. */
export function startErrorPath(f: WizardForm, message: string): string | undefined {
  if (f.kernel !== '' && message.includes(f.kernel)) return 'boot.kernel';
  if (f.initrd !== '' && message.includes(f.initrd)) return 'boot.initrd';
  if (/\bkernel\b/i.test(message)) return 'boot.kernel';
  if (/\binitrd\b/i.test(message)) return 'boot.initrd';
  return undefined;
}

/** The line (0-based) where a definition path's innermost named key is written, or -1. */
export function lineOfPath(text: string, path: string): number {
  const keys = path.split(/[.[\]]+/).filter((k) => k !== '' && !/^\d+$/.test(k));
  const lines = text.split('\n');
  let from = 0;
  let found = -1;
  for (const key of keys) {
    const at = lines.findIndex((l, i) => i >= from && new RegExp(`^\\s*-?\\s*${key.replace(/[^A-Za-z0-9_]/g, '')}\\s*:`).test(l));
    if (at < 0) break;
    found = at;
    from = at + 1;
  }
  return found;
}

/** Lines only in `a` (-) and only in `b` (+), in order: enough to see what a restart would change. */
export function lineDiff(a: string, b: string): { sign: '+' | '-'; text: string }[] {
  const x = a.split('\n');
  const y = b.split('\n');
  // Longest common subsequence, small inputs (definitions are short).
  const n = x.length;
  const m = y.length;
  const dp: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) dp[i]![j] = x[i] === y[j] ? dp[i + 1]![j + 1]! + 1 : Math.max(dp[i + 1]![j]!, dp[i]![j + 1]!);
  const out: { sign: '+' | '-'; text: string }[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && x[i] === y[j]) { i++; j++; } else if (j < m && (i >= n || dp[i]![j + 1]! > dp[i + 1]![j]!)) out.push({ sign: '+', text: y[j++]! });
    else out.push({ sign: '-', text: x[i++]! });
  }
  return out;
}

