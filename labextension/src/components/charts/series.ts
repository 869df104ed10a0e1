/** Server series -> uPlot's aligned arrays (nulls for gaps; 'NaN' and the like become gaps). */
import uPlot from 'uplot';

import { IGpuSample, IMetricSeries, MetricValue } from '../../api';

function num(value: MetricValue | undefined): number | null {
  if (typeof value === 'number') {
    return Number.isFinite(value) ? value : null;
  }
  return null;
}

/** `[steps, values, max, min]`; max/min only differ from values where buckets were merged. */
export function metricData(series: IMetricSeries): uPlot.AlignedData {
  const n = series.points.length;
  const steps = new Array<number>(n);
  const values = new Array<number | null>(n);
  const max = new Array<number | null>(n);
  const min = new Array<number | null>(n);
  series.points.forEach(([step, value, lo, hi], i) => {
    steps[i] = step;
    values[i] = num(value);
    min[i] = num(lo);
    max[i] = num(hi);
  });
  return [steps, values, max, min];
}

/** Whether the server merged points into buckets (then the min/max band is worth drawing). */
export function isDownsampled(series: IMetricSeries): boolean {
  return series.total > series.points.length;
}

/** Several runs' series of one metric on one step axis (uPlot.join aligns the steps). */
export function overlayData(all: IMetricSeries[]): uPlot.AlignedData {
  if (!all.length) {
    return [[]];
  }
  const tables = all.map(s => {
    const [steps, values] = metricData(s);
    return [steps, values] as uPlot.AlignedData;
  });
  return uPlot.join(tables);
}

/** `[time, util %, memory used (GiB)]` of one GPU. */
export function gpuData(samples: IGpuSample[]): uPlot.AlignedData {
  return [
    samples.map(s => s.time),
    samples.map(s => (typeof s.util === 'number' ? s.util : null)),
    samples.map(s =>
      typeof s.mem_used === 'number' ? s.mem_used / 1024 ** 3 : null
    )
  ];
}
