/**
 * The definition editor: the saved YAML, saved through the same validation as `virtkit edit`;
 * an error is shown at its field (the line of the path's key is marked). While the guest runs,
 * the live definition and the pending changes (saved vs live) are shown too.
 */
import { useEffect, useState } from 'preact/hooks';
import { shownError, type ShownError } from '../components/errors';
import { client } from '../session';

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
    if (i < n && j < m && x[i] === y[j]) { i++; j++; } else if (j < m && (i >= n || dp[i]![j + 1]! >= dp[i + 1]![j]!)) out.push({ sign: '+', text: y[j++]! });
    else out.push({ sign: '-', text: x[i++]! });
  }
  return out;
}

export function DefinitionEditor({ name, running }: { name: string; running: boolean }) {
  const [text, setText] = useState('');
  const [saved, setSaved] = useState('');
  const [liveText, setLiveText] = useState<string>();
  const [error, setError] = useState<ShownError>();
  const [notice, setNotice] = useState('');
  const load = async (): Promise<void> => {
    const def = await client.getDefinition(name, 'yaml');
    setText(def.text);
    setSaved(def.text);
    if (running) {
      const l = await client.call('domain.getDefinition', { params: { name }, query: { format: 'yaml', live: true } });
      setLiveText(l.text);
    } else setLiveText(undefined);
  };
  useEffect(() => { load().catch((e: unknown) => setError(shownError(e))); }, [name, running]);
  const save = async (): Promise<void> => {
    setNotice('');
    try {
      await client.updateDefinition(name, text);
      setError(undefined);
      setNotice(running ? 'Saved: the next start uses it (changes that apply live were applied).' : 'Saved.');
      await load();
    } catch (e) {
      setError(shownError(e));
    }
  };
  const errorLine = error?.path ? lineOfPath(text, error.path) : -1;
  const diff = liveText !== undefined ? lineDiff(liveText, saved) : [];
  return (
    <div class="definition">
      <div class="editor-wrap">
        <ol class="gutter" aria-hidden="true">
          {text.split('\n').map((_, i) => <li class={i === errorLine ? 'bad' : ''}>{i + 1}</li>)}
        </ol>
        <textarea aria-label="Definition (YAML)" spellcheck={false} rows={Math.max(12, text.split('\n').length + 1)} value={text}
          aria-invalid={error ? 'true' : 'false'} onInput={(e) => setText(e.currentTarget.value)} data-testid="definition-editor" />
      </div>
      {error ? (
        <div class="field-error" role="alert" data-testid="definition-error">
          {errorLine >= 0 ? `line ${errorLine + 1}: ` : ''}<code>{error.code}</code> {error.message}
        </div>
      ) : null}
      {notice ? <p class="notice" role="status">{notice}</p> : null}
      <div class="toolbar">
        <button type="button" class="primary" onClick={() => void save()} disabled={text === saved}>Save</button>
        <button type="button" onClick={() => { setText(saved); setError(undefined); }} disabled={text === saved}>Revert</button>
      </div>
      {liveText !== undefined ? (
        <div>
          <h3>Pending changes (saved vs running)</h3>
          {diff.length === 0 ? <p>None: the guest runs its saved definition.</p> : (
            <pre class="diff" data-testid="pending-diff">{diff.map((d) => <div class={d.sign === '+' ? 'add' : 'del'}>{d.sign} {d.text}</div>)}</pre>
          )}
        </div>
      ) : null}
    </div>
  );
}
