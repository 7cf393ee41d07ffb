/**
 * The definition editor: the saved YAML, saved through the same validation as `virtkit edit`;
 * an error is shown at its field (the line of the path's key is marked). While the guest runs,
 * the live definition and the pending changes (saved vs live) are shown too.
 */
import { useEffect, useState } from 'preact/hooks';
import { shownError, type ShownError } from '../components/errors';
import { lineDiff, lineOfPath } from '../forms';
import { client } from '../session';

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
        <textarea aria-label="Definition (YAML)" spellcheck={false} wrap="off" rows={Math.max(12, text.split('\n').length + 1)} value={text}
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
