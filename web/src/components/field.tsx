/**
 * A labelled form field that shows the schema's error for its definition path right under it
 * (errors come from the daemon's validation of the same schema the CLI uses).
 */
import type { ComponentChildren } from 'preact';
import { errorAt } from '../forms';
import type { ShownError } from './errors';

export function Field({ label, path, error, hint, children }: {
  label: string; path: string; error: ShownError | undefined; hint?: string; children: ComponentChildren;
}) {
  const message = errorAt(error, path);
  const id = `field-${path.replace(/[^A-Za-z0-9]/g, '-')}`;
  return (
    <div class={message ? 'field invalid' : 'field'} data-path={path}>
      <label for={id}>{label}</label>
      <div class="control" id={`${id}-wrap`}>{children}</div>
      {hint && !message ? <small class="hint">{hint}</small> : null}
      {message ? <small class="field-error" role="alert" id={`${id}-error`}>{message}</small> : null}
    </div>
  );
}

/** The id a Field gives its control, for `<input id=...>`. */
export function fieldId(path: string): string {
  return `field-${path.replace(/[^A-Za-z0-9]/g, '-')}`;
}
