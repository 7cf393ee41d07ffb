/**
 * A labelled form field that shows the schema's error for its definition path right under it
 * (errors come from the daemon's validation of the same schema the CLI uses).
 */
import type { ComponentChildren } from 'preact';
import type { ShownError } from './errors';

/** Whether an error's definition path is this field's (`disks[0].volume` belongs to `disks`). */
export function errorAt(error: ShownError | undefined, path: string): string | undefined {
  if (!error?.path) return undefined;
  const p = error.path;
  return p === path || p.startsWith(`${path}.`) || p.startsWith(`${path}[`) ? error.message : undefined;
}

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
