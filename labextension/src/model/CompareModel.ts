/**
 * Several runs side by side: params (which differ), latest metrics, and each metric's curves of
 * every run, overlaid and zoomable.
 */
import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import {
  compareRuns,
  EventFeed,
  getMetricSeries,
  ICompare,
  IMetricSeries,
  IRunEvent
} from '../api';
import { errorMessage } from './RunsModel';
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

export class CompareModel implements IDisposable {
  constructor(
    readonly ids: string[],
    private readonly _feed: EventFeed | null
  ) {
    this._feed?.received.connect(this._onEvents, this);
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  get data(): ICompare | null {
    return this._data;
  }

  get error(): string | null {
    return this._error;
  }

  get onlyDifferences(): boolean {
    return this._onlyDifferences;
  }

  setOnlyDifferences(value: boolean): void {
    this._onlyDifferences = value;
    this._emit();
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
    const signal = this._controller.signal;
    try {
      this._data = await compareRuns(this.ids, signal);
      this._differ = new Set(this._data.params_differ);
      this._error = null;
    } catch (error) {
      if (!signal.aborted) {
        this._error = errorMessage(error);
        this._emit();
      }
      return;
    }
    this._emit();
    await Promise.all(this.chartedKeys.map(key => this._loadSeries(key)));
  }

  zoom(key: string, range: StepRange): void {
    const state = this.series(key);
    this._series.set(key, { ...state, range });
    void this._loadSeries(key);
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this._controller.abort();
    clearTimeout(this._timer);
    this._feed?.received.disconnect(this._onEvents, this);
    Signal.clearData(this);
  }

  private async _loadSeries(key: string): Promise<void> {
    const signal = this._controller.signal;
    const state = this.series(key);
    const token = (this._tokens.get(key) ?? 0) + 1;
    this._tokens.set(key, token);
    this._series.set(key, { ...state, loading: true });
    this._emit();
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
    this._emit();
  }

  private _onEvents(_: EventFeed, events: IRunEvent[]): void {
    if (
      this._timer === undefined &&
      events.some(
        e =>
          e.run_id &&
          this.ids.includes(e.run_id) &&
          (e.type === 'metrics' || e.type === 'params' || e.type === 'run')
      )
    ) {
      this._timer = window.setTimeout(() => {
        this._timer = undefined;
        void this.load();
      }, LIVE_DELAY_MS);
    }
  }

  private _emit(): void {
    if (this._emitQueued || this._isDisposed) {
      return;
    }
    this._emitQueued = true;
    queueMicrotask(() => {
      this._emitQueued = false;
      if (!this._isDisposed) {
        this._changed.emit();
      }
    });
  }

  private _data: ICompare | null = null;
  private _differ = new Set<string>();
  private _error: string | null = null;
  private _onlyDifferences = false;
  private _series = new Map<string, ICompareSeries>();
  private _tokens = new Map<string, number>();
  private _controller = new AbortController();
  private _timer: number | undefined;
  private _emitQueued = false;
  private _isDisposed = false;
  private _changed = new Signal<this, void>(this);
}
