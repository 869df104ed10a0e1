/**
 * Chart series state shared by the run detail and the compare view: a downsampled series per
 * metric, the zoomed step range, and re-fetching at full resolution for that range.
 */
import { IMetricSeries } from '../api';

/** Points asked of the server per series: about two per pixel of a wide chart. */
export const CHART_POINTS = 1000;

/** A step range `[start, end]`, or null for the whole series. */
export type StepRange = [number, number] | null;

export interface ISeriesState {
  /** The latest series received (kept while a zoom re-fetch is on its way). */
  series: IMetricSeries | null;
  range: StepRange;
  loading: boolean;
  error: string | null;
}

export function emptySeries(): ISeriesState {
  return { series: null, range: null, loading: true, error: null };
}

/** Start/end query parameters for a range. */
export function rangeParams(range: StepRange): {
  start?: number;
  end?: number;
} {
  return range ? { start: Math.floor(range[0]), end: Math.ceil(range[1]) } : {};
}
