/**
 * Matches a name against a shell glob (`*`, `?`, `[abc]`, `[!a-z]`) without regular
 * expressions: the classic two-pointer walk with one backtrack point, O(name x glob) at
 * worst, so a guest's `default *a*a*a*...` in loader.conf cannot make matching explode.
 */
function matchClass(glob: string, at: number, c: string): { matched: boolean; next: number } | undefined {
  let end = glob.indexOf(']', at + 2);
  if (end < 0) return undefined;
  let i = at + 1;
  const negate = glob[i] === '!' || glob[i] === '^';
  if (negate) {
    i++;
    end = glob.indexOf(']', i + 1);
    if (end < 0) return undefined;
  }
  let matched = false;
  for (; i < end; i++) {
    const lo = glob[i]!;
    if (glob[i + 1] === '-' && i + 2 < end) {
      if (c >= lo && c <= glob[i + 2]!) matched = true;
      i += 2;
    } else if (c === lo) matched = true;
  }
  return { matched: matched !== negate, next: end + 1 };
}

export function matchesGlob(glob: string, name: string): boolean {
  let g = 0;
  let n = 0;
  let starG = -1;
  let starN = 0;
  while (n < name.length) {
    const c = glob[g];
    if (c === '*') {
      starG = g++;
      starN = n;
      continue;
    }
    if (c === '[') {
      const cls = matchClass(glob, g, name[n]!);
      if (cls !== undefined) {
        if (cls.matched) {
          g = cls.next;
          n++;
          continue;
        }
      } else if (name[n] === '[') {
        g++;
        n++;
        continue;
      }
    } else if (c !== undefined && (c === '?' || c === name[n])) {
      g++;
      n++;
      continue;
    }
    if (starG < 0) return false;
    g = starG + 1;
    n = ++starN;
  }
  while (glob[g] === '*') g++;
  return g === glob.length;
}
