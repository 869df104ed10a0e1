/**
 * Several runs side by side: params (which differ), latest metrics, and each metric's curves of
 * every run, overlaid and zoomable.
 */
import {
  compareRuns,
  EventFeed,
  getMetricSeries,
  ICompare,
  IMetricSeries,
  IRunEvent
} from '../api';
import { LiveModel } from './LiveModel';
import { CHART_POINTS, rangeParams, StepRange } from './series';

/** Metrics charted at most. */
export const MAX_COMPARE_CHARTS = 8;
const LIVE_DELAY_MS = 1500;

export interface ICompareSeries {
  /** Per run id (in the compared order); missing: that run has no such metric. */
  series: Map<string, IMetricSeries>;
  range: StepRange;
  loading: boolean;
}

export class CompareModel extends LiveModel {
  constructor(
    readonly ids: string[],
    feed: EventFeed | null
  ) {
    super(feed);
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

  /**
   * A label per run for headers and legends: the name, with a short id where two compared
   * runs share a name (`train · 3f2a91c0`).
   */
  get labels(): { id: string; label: string }[] {
    const runs = this._data?.runs ?? [];
    const count = new Map<string, number>();
    for (const r of runs) {
      const name = r.name || r.id;
      count.set(name, (count.get(name) ?? 0) + 1);
    }
    return runs.map(r => {
      const name = r.name || r.id;
      return {
        id: r.id,
        label:
          (count.get(name) ?? 0) > 1 ? `${name} · ${r.id.slice(0, 8)}` : name
      };
    });
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

  private async _loadSeries(key: string): Promise<void> {
    const signal = this.signal;
    const state = this.series(key);
    const token = (this._tokens.get(key) ?? 0) + 1;
    this._tokens.set(key, token);
    this._series.set(key, { ...state, loading: true });
    this.emit();
    const runs = this._data?.runs ?? [];
    const results = await Promise.all(
      runs
        .filter(run => key in run.metrics)
        .map(run =>
          getMetricSeries(
            run.id,
            key,
            { points: CHART_POINTS, ...rangeParams(state.range) },
            signal
          ).then(
            series => [run.id, series] as const,
            () => null
          )
        )
    );
    if (signal.aborted || this._tokens.get(key) !== token) {
      return;
    }
    const series = new Map<string, IMetricSeries>();
    for (const result of results) {
      if (result) {
        series.set(result[0], result[1]);
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
          this.ids.includes(e.run_id) &&
          (e.type === 'metrics' || e.type === 'params' || e.type === 'run')
      )
    ) {
      this._reload.schedule(LIVE_DELAY_MS);
    }
  }

  private _reload = this.later(() => this.load());
  private _data: ICompare | null = null;
  private _differ = new Set<string>();
  private _onlyDifferences = false;
  private _series = new Map<string, ICompareSeries>();
  private _tokens = new Map<string, number>();
}
