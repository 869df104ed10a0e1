/**
 * Several runs side by side (up to COMPARE_MAX, a sweep's trials): params (which differ), latest
 * metrics, each metric's curves of every run (one request per metric for all runs), zoomable;
 * grouped by a parameter (mean curve and band per group), and the runs a parallel-coordinates
 * brush picked.
 */
import {
  compareRuns,
  compareSeries,
  EventFeed,
  ICompare,
  ICompareRun,
  IMetricSeries,
  IRunEvent
} from '../api';
import {
  ALL_BUT_SEED,
  BandMode,
  groupParams,
  groupRuns,
  IRunGroup,
  NO_GROUP,
  offersAllButSeed
} from './groups';
import { Identity } from './Identity';
import { LiveModel } from './LiveModel';
import { CHART_POINTS, rangeParams, StepRange } from './series';

/** Metrics charted at most. */
export const MAX_COMPARE_CHARTS = 8;
/**
 * Points asked per metric for all runs together: 40 runs get 500 points each (about one per
 * pixel of a chart), 200 runs 100 each (a 2 MB answer at most).
 */
export const COMPARE_POINT_BUDGET = 20_000;
const MIN_POINTS = 100;
const LIVE_DELAY_MS = 1500;

/** Points per run's series when `runs` runs are charted. */
export function pointsPerRun(runs: number): number {
  return Math.max(
    MIN_POINTS,
    Math.min(CHART_POINTS, Math.floor(COMPARE_POINT_BUDGET / Math.max(1, runs)))
  );
}

export interface ICompareSeries {
  /** Per run id (in the compared order); missing: that run has no such metric. */
  series: Map<string, IMetricSeries>;
  range: StepRange;
  loading: boolean;
}

/**
 * The last grouping chosen, for the next compare in this page (a sweep's trials compared again
 * open grouped the same way, where that parameter differs).
 */
const remembered: { groupBy: string; band: BandMode } = {
  groupBy: NO_GROUP,
  band: 'minmax'
};

export class CompareModel extends LiveModel {
  constructor(
    readonly ids: string[],
    feed: EventFeed | null,
    readonly identity: Identity | null = null
  ) {
    super(feed);
    this._idSet = new Set(ids);
    this._groupBy = remembered.groupBy;
    this._band = remembered.band;
  }

  get data(): ICompare | null {
    return this._data;
  }

  get onlyDifferences(): boolean {
    return this._onlyDifferences;
  }

  setOnlyDifferences(value: boolean): void {
    this._onlyDifferences = value;
    this.emit();
  }

  /** Whether the compared runs have more than one owner (a team's store): labels name them. */
  get severalOwners(): boolean {
    const runs = this._data?.runs ?? [];
    return (
      !!this.identity?.team && new Set(runs.map(r => r.owner ?? '')).size > 1
    );
  }

  /**
   * A label per run for headers and legends: the name, with its owner where the runs are of
   * several users (`train (alice)`), and a short id where two compared runs still share a
   * label (`train · 3f2a91c0`).
   */
  get labels(): { id: string; label: string }[] {
    const runs = this._data?.runs ?? [];
    if (this._labelsFor === runs) {
      return this._labels;
    }
    const owners = this.severalOwners;
    const base = (r: ICompareRun) => {
      const name = r.name || r.id;
      return owners && r.owner ? `${name} (${r.owner})` : name;
    };
    const count = new Map<string, number>();
    for (const r of runs) {
      const name = base(r);
      count.set(name, (count.get(name) ?? 0) + 1);
    }
    this._labelsFor = runs;
    this._labels = runs.map(r => {
      const name = base(r);
      return {
        id: r.id,
        label:
          (count.get(name) ?? 0) > 1 ? `${name} · ${r.id.slice(0, 8)}` : name
      };
    });
    return this._labels;
  }

  /** The params to show: all, or only those whose values differ between the runs. */
  get shownParams(): string[] {
    if (!this._data) {
      return [];
    }
    return this._onlyDifferences ? this._data.params_differ : this._data.params;
  }

  isDifferent(param: string): boolean {
    return this._differ.has(param);
  }

  get chartedKeys(): string[] {
    return (this._data?.metrics ?? []).slice(0, MAX_COMPARE_CHARTS);
  }

  series(key: string): ICompareSeries {
    return (
      this._series.get(key) ?? {
        series: new Map(),
        range: null,
        loading: true
      }
    );
  }

  // --- grouping ---------------------------------------------------------------------------------

  /** What the runs are grouped by: a differing param, ALL_BUT_SEED, or NO_GROUP. */
  get groupBy(): string {
    const differ = this._data?.params_differ ?? [];
    const by = this._groupBy;
    if (by === ALL_BUT_SEED) {
      return offersAllButSeed(differ) ? by : NO_GROUP;
    }
    return differ.includes(by) ? by : NO_GROUP;
  }

  setGroupBy(by: string): void {
    this._groupBy = by;
    remembered.groupBy = by;
    this.emit();
  }

  get band(): BandMode {
    return this._band;
  }

  setBand(band: BandMode): void {
    this._band = band;
    remembered.band = band;
    this.emit();
  }

  /** The params the groups are made on ([] when not grouped). */
  get groupParams(): string[] {
    return groupParams(this.groupBy, this._data?.params_differ ?? []);
  }

  /** The groups of every compared run (null: not grouped). */
  get groups(): IRunGroup[] | null {
    const params = this.groupParams;
    if (!params.length || !this._data) {
      return null;
    }
    const key = JSON.stringify(params);
    if (this._groupsFor !== this._data.runs || this._groupsKey !== key) {
      this._groupsFor = this._data.runs;
      this._groupsKey = key;
      this._groups = groupRuns(this._data.runs, params);
    }
    return this._groups;
  }

  // --- parallel coordinates and its brush -------------------------------------------------------

  /** The metric on the parallel plot's last axis (its latest value per run). */
  get parallelMetric(): string | null {
    const metrics = this._data?.metrics ?? [];
    if (
      this._parallelMetric !== null &&
      metrics.includes(this._parallelMetric)
    ) {
      return this._parallelMetric;
    }
    return metrics[0] ?? null;
  }

  setParallelMetric(key: string): void {
    this._parallelMetric = key;
    this.emit();
  }

  /** The run ids inside the parallel plot's brush; null: no brush. */
  get brushed(): ReadonlySet<string> | null {
    return this._brushed;
  }

  setBrushed(ids: string[] | null): void {
    const next = ids === null ? null : new Set(ids);
    const same =
      next === this._brushed ||
      (next !== null &&
        this._brushed !== null &&
        next.size === this._brushed.size &&
        [...next].every(id => this._brushed!.has(id)));
    if (!same) {
      this._brushed = next;
      this.emit();
    }
  }

  /** The runs the tables show: those in the brush, or all. */
  get shownRuns(): ICompareRun[] {
    const runs = this._data?.runs ?? [];
    const brushed = this._brushed;
    return brushed ? runs.filter(r => brushed.has(r.id)) : runs;
  }

  // --- loading ----------------------------------------------------------------------------------

  async load(): Promise<void> {
    const signal = this.signal;
    try {
      this._data = await compareRuns(this.ids, signal);
      this._differ = new Set(this._data.params_differ);
      this.setError(null);
    } catch (error) {
      if (!signal.aborted) {
        this.setError(error);
      }
      return;
    }
    this.emit();
    await Promise.all(this.chartedKeys.map(key => this._loadSeries(key)));
  }

  zoom(key: string, range: StepRange): void {
    const state = this.series(key);
    this._series.set(key, { ...state, range });
    void this._loadSeries(key);
  }

  /** One request for the metric's series of every run that logged it. */
  private async _loadSeries(key: string): Promise<void> {
    const signal = this.signal;
    const state = this.series(key);
    const token = (this._tokens.get(key) ?? 0) + 1;
    this._tokens.set(key, token);
    this._series.set(key, { ...state, loading: true });
    this.emit();
    const ids = (this._data?.runs ?? [])
      .filter(run => key in run.metrics)
      .map(run => run.id);
    let found: Record<string, IMetricSeries> = {};
    if (ids.length) {
      try {
        found = (
          await compareSeries(
            ids,
            key,
            { points: pointsPerRun(ids.length), ...rangeParams(state.range) },
            signal
          )
        ).series;
      } catch (error) {
        if (signal.aborted) {
          return;
        }
        console.warn(`jupyter-mlp: the series of ${key} failed`, error);
      }
    }
    if (signal.aborted || this._tokens.get(key) !== token) {
      return;
    }
    const series = new Map<string, IMetricSeries>();
    for (const id of ids) {
      if (found[id]) {
        series.set(id, found[id]);
      }
    }
    this._series.set(key, { series, range: state.range, loading: false });
    this.emit();
  }

  protected onEvents(events: IRunEvent[]): void {
    if (
      events.some(
        e =>
          e.run_id &&
          this._idSet.has(e.run_id) &&
          (e.type === 'metrics' || e.type === 'params' || e.type === 'run')
      )
    ) {
      this._reload.schedule(LIVE_DELAY_MS);
    }
  }

  private _reload = this.later(() => this.load());
  private _idSet: Set<string>;
  private _data: ICompare | null = null;
  private _differ = new Set<string>();
  private _onlyDifferences = false;
  private _series = new Map<string, ICompareSeries>();
  private _tokens = new Map<string, number>();
  private _labels: { id: string; label: string }[] = [];
  private _labelsFor: ICompareRun[] | null = null;
  private _groupBy: string;
  private _band: BandMode;
  private _groups: IRunGroup[] | null = null;
  private _groupsFor: ICompareRun[] | null = null;
  private _groupsKey = '';
  private _parallelMetric: string | null = null;
  private _brushed: Set<string> | null = null;
}
