/** Small helpers shared by the benchmarks: timing, medians and ratio lines. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export async function timeMs(fn: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

export function ratioLine(label: string, ours: number, ref: number, unit: string, refName: string): string {
  return `${label}: virtkit ${ours.toFixed(2)} ${unit}, ${refName} ${ref.toFixed(2)} ${unit}, ratio ${(ours / ref).toFixed(3)}`;
}

/** A target of the performance issue: its figures, then whether it is reached. */
export function targetLine(label: string, reached: boolean, figures: string): string {
  return `target ${label}: ${figures}: ${reached ? 'reached' : 'NOT REACHED'}`;
}
