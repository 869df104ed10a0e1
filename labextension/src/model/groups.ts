/**
 * Compare's groups: runs with the same value of a parameter form a group (or the same values of
 * every differing parameter but the seed: seeds averaged), and a group's curve of a metric is the
 * mean over its runs, aligned by step, with a min–max or ±std band around it.
 */
import { ICompareRun, IMetricSeries, JSONValue, MetricValue } from '../api';

/** Group by: nothing (one line per run). */
export const NO_GROUP = '';
/** Group by: every parameter that differs, except the seed (runs differing only in seed). */
export const ALL_BUT_SEED = '*';

export type BandMode = 'minmax' | 'std';

/** A parameter that seeds a random generator (`seed`, `random_seed`, `data.seed`, ...). */
export function isSeedParam(key: string): boolean {
  return /seed$/i.test(key);
}

/** The parameters a group-by choice groups on. */
export function groupParams(by: string, differ: readonly string[]): string[] {
  if (by === NO_GROUP) {
    return [];
  }
  if (by === ALL_BUT_SEED) {
    return differ.filter(k => !isSeedParam(k));
  }
  return [by];
}

/** Whether "every parameter but the seed" is worth offering (a seed and ≥ 2 others differ). */
export function offersAllButSeed(differ: readonly string[]): boolean {
  const seeds = differ.filter(isSeedParam).length;
  return seeds > 0 && differ.length - seeds >= 2;
}

export interface IRunGroup {
  /** Stable across reloads: the grouped values as JSON. */
  key: string;
  /** Per grouped parameter: its value in this group (undefined: the runs lack it). */
  values: [string, JSONValue | undefined][];
  /** In the compared order. */
  runIds: string[];
  /** Index in the theme palette (the group's colour everywhere). */
  color: number;
}

function valueOrder(
  a: JSONValue | undefined,
  b: JSONValue | undefined
): number {
  if (a === undefined || b === undefined) {
    return a === b ? 0 : a === undefined ? 1 : -1;
  }
  if (typeof a === 'number' && typeof b === 'number') {
    return a - b;
  }
  const sa = typeof a === 'string' ? a : JSON.stringify(a);
  const sb = typeof b === 'string' ? b : JSON.stringify(b);
  return sa < sb ? -1 : sa > sb ? 1 : 0;
}

/** The groups of `runs` on `params`, ordered by their values (numbers numerically). */
export function groupRuns(
  runs: readonly ICompareRun[],
  params: readonly string[]
): IRunGroup[] {
  const byKey = new Map<string, IRunGroup>();
  for (const run of runs) {
    const values = params.map(
      p =>
        [p, p in run.params ? run.params[p] : undefined] as [
          string,
          JSONValue | undefined
        ]
    );
    const key = JSON.stringify(
      values.map(([, v]) => (v === undefined ? { unset: true } : v))
    );
    let group = byKey.get(key);
    if (!group) {
      group = { key, values, runIds: [], color: 0 };
      byKey.set(key, group);
    }
    group.runIds.push(run.id);
  }
  const groups = [...byKey.values()].sort((a, b) => {
    for (let i = 0; i < params.length; i++) {
      const order = valueOrder(a.values[i][1], b.values[i][1]);
      if (order) {
        return order;
      }
    }
    return 0;
  });
  groups.forEach((g, i) => (g.color = i));
  return groups;
}

function num(value: MetricValue | undefined): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

/** Mean, and the band's upper and lower edge, of some numbers (null: none). */
export function stats(
  values: readonly number[],
  band: BandMode
): { mean: number; upper: number; lower: number } | null {
  const n = values.length;
  if (!n) {
    return null;
  }
  let sum = 0;
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    sum += v;
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  const mean = sum / n;
  if (band === 'minmax') {
    return { mean, upper: hi, lower: lo };
  }
  let squares = 0;
  for (const v of values) {
    squares += (v - mean) ** 2;
  }
  const std = n > 1 ? Math.sqrt(squares / (n - 1)) : 0;
  return { mean, upper: mean + std, lower: mean - std };
}

export interface IGroupCurve {
  steps: number[];
  mean: (number | null)[];
  upper: (number | null)[];
  lower: (number | null)[];
  /** Runs that contributed (logged the metric). */
  runs: number;
}

/** The steps to align on: the runs' own when they share them, else their union, thinned. */
function stepGrid(all: readonly IMetricSeries[], points: number): number[] {
  const first = all[0].points;
  const same = all.every(
    s =>
      s.points.length === first.length &&
      s.points.every((p, i) => p[0] === first[i][0])
  );
  if (same) {
    return first.map(p => p[0]);
  }
  const union = new Set<number>();
  for (const s of all) {
    for (const p of s.points) {
      union.add(p[0]);
    }
  }
  const sorted = [...union].sort((a, b) => a - b);
  if (sorted.length <= points) {
    return sorted;
  }
  const every = sorted.length / points;
  const out: number[] = [];
  for (let i = 0; i < points; i++) {
    out.push(sorted[Math.floor(i * every)]);
  }
  out.push(sorted[sorted.length - 1]);
  return out;
}

/**
 * A group's curve of one metric: at each step of the grid, the mean over the runs whose series
 * spans that step (a run's value between two of its points is interpolated linearly), with the
 * band's edges (min–max, or mean ± the sample standard deviation).
 */
export function groupCurve(
  all: readonly IMetricSeries[],
  band: BandMode,
  points = 1000
): IGroupCurve {
  const series = all.filter(s => s.points.length > 0);
  if (!series.length) {
    return { steps: [], mean: [], upper: [], lower: [], runs: 0 };
  }
  const steps = stepGrid(series, points);
  const mean: (number | null)[] = new Array(steps.length).fill(null);
  const upper: (number | null)[] = new Array(steps.length).fill(null);
  const lower: (number | null)[] = new Array(steps.length).fill(null);
  const cursor = series.map(() => 0);
  const at: number[] = [];
  steps.forEach((x, i) => {
    at.length = 0;
    series.forEach((s, r) => {
      const pts = s.points;
      const last = pts.length - 1;
      if (x < pts[0][0] || x > pts[last][0]) {
        return;
      }
      let j = cursor[r];
      while (j < last && pts[j + 1][0] <= x) {
        j++;
      }
      cursor[r] = j;
      const a = num(pts[j][1]);
      if (pts[j][0] === x || j === last) {
        if (a !== null) {
          at.push(a);
        }
        return;
      }
      const b = num(pts[j + 1][1]);
      if (a === null || b === null) {
        return;
      }
      const t = (x - pts[j][0]) / (pts[j + 1][0] - pts[j][0]);
      at.push(a + (b - a) * t);
    });
    const s = stats(at, band);
    if (s) {
      mean[i] = s.mean;
      upper[i] = s.upper;
      lower[i] = s.lower;
    }
  });
  return { steps, mean, upper, lower, runs: series.length };
}

/** The mean of a group's latest values of a metric, and how many runs have one. */
export function groupLatest(
  runs: readonly ICompareRun[],
  key: string
): { mean: number | null; n: number; lo: number | null; hi: number | null } {
  const values = runs
    .map(r => num(r.metrics[key]))
    .filter((v): v is number => v !== null);
  const s = stats(values, 'minmax');
  return {
    mean: s?.mean ?? null,
    n: values.length,
    lo: s?.lower ?? null,
    hi: s?.upper ?? null
  };
}
