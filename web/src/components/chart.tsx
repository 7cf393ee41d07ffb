/** A live line chart (uPlot): the last 60 samples of one or more series. */
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export function LiveChart({ title, series, samples, unit }: {
  title: string; series: string[]; unit: string;
  /** [time (s), value per series][] */
  samples: number[][];
}) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot>();
  useEffect(() => {
    const colors = ['#2f7ed8', '#d8572f', '#3aa35b', '#9b59b6'];
    plot.current = new uPlot({
      title, width: 360, height: 180,
      scales: { x: { time: true } },
      axes: [{ stroke: 'currentColor' }, { stroke: 'currentColor', label: unit }],
      series: [{}, ...series.map((label, i) => ({ label, stroke: colors[i % colors.length]!, width: 2 }))],
    }, [[], ...series.map(() => [])], box.current!);
    return () => plot.current?.destroy();
  }, [title, series.join(','), unit]);
  useEffect(() => {
    const cols: number[][] = [samples.map((s) => s[0]!), ...series.map((_, i) => samples.map((s) => s[i + 1] ?? 0))];
    plot.current?.setData(cols as unknown as uPlot.AlignedData);
  }, [samples]);
  return <div class="chart" ref={box} />;
}
