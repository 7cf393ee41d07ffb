/**
 * Version ordering for BLS entries, after rpm's rpmvercmp (which GRUB's blscfg uses): the
 * strings are split into runs of digits and runs of letters, other characters only
 * separate; digit runs compare numerically and beat letter runs; `~` sorts before anything,
 * even the end of the string (`1.0~rc1` < `1.0`). Linear in the lengths.
 */
function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= '0' && c <= '9';
}

function isAlpha(c: string | undefined): boolean {
  return c !== undefined && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'));
}

function isSeparator(c: string | undefined): boolean {
  return c !== undefined && c !== '~' && !isDigit(c) && !isAlpha(c);
}

/** Negative when a sorts before b, positive after, 0 when equal. */
export function compareVersions(a: string, b: string): number {
  if (a === b) return 0;
  let i = 0;
  let j = 0;
  for (;;) {
    while (isSeparator(a[i])) i++;
    while (isSeparator(b[j])) j++;
    const ta = a[i] === '~';
    const tb = b[j] === '~';
    if (ta || tb) {
      if (!tb) return -1;
      if (!ta) return 1;
      i++;
      j++;
      continue;
    }
    if (i >= a.length || j >= b.length) break;
    const numeric = isDigit(a[i]);
    const test = numeric ? isDigit : isAlpha;
    const si = i;
    const sj = j;
    while (test(a[i])) i++;
    while (test(b[j])) j++;
    let ra = a.slice(si, i);
    let rb = b.slice(sj, j);
    // A digit run against a letter run: the numeric one is newer.
    if (rb === '') return numeric ? 1 : -1;
    if (numeric) {
      ra = ra.replace(/^0+/, '');
      rb = rb.replace(/^0+/, '');
      if (ra.length !== rb.length) return ra.length > rb.length ? 1 : -1;
    }
    if (ra !== rb) return ra > rb ? 1 : -1;
  }
  if (i >= a.length && j >= b.length) return 0;
  return i >= a.length ? -1 : 1;
}
