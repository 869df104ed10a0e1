/**
 * One run's detail view state: the run, its typed params, cells, metric series (zoomable), GPU
 * timeline and lineage, kept current by the event feed while the view is open.
 */
import {
  errorText,
  EventFeed,
  getCells,
  getGpuSeries,
  getMetricKeys,
  getMetricSeries,
  getParams,
  getRun,
  ICell,
  IGpuSeries,
  IMetricKey,
  IParam,
  IRun,
  IRunEvent,
  listRuns
} from '../api';
import { Identity } from './Identity';
import { Later, LiveModel } from './LiveModel';
import {
  applyRunChange,
  offersChange,
  RunChange,
  RunChangeKind
} from './runActions';
import {
  CHART_POINTS,
  emptySeries,
  ISeriesState,
  rangeParams,
  StepRange
} from './series';

/** Metrics charted at most (the rest are listed with their latest value). */
export const MAX_CHARTS = 12;
/** Records of a live run are fetched again at most this often. */
const LIVE_DELAY_MS = 1000;
/** Children shown in the lineage section. */
const CHILDREN_LIMIT = 50;

type Part =
  'run' | 'cells' | 'metrics' | 'params' | 'gpu' | 'children' | 'parent';

export class RunDetailModel extends LiveModel {
  constructor(
    readonly id: string,
    feed: EventFeed | null,
    readonly identity: Identity | null = null
  ) {
    super(feed);
    identity?.changed.connect(() => this.emit(), this);
  }

  /** Whether the run is this user's. */
  get mine(): boolean {
    return !!this.identity?.isMine(this._run?.owner);
  }

  /**
   * Whether the view offers a change of the run: its owner's and the admins' only (and Cancel
   * only while the job can be cancelled). Without an identity, as a single seat: all.
   */
  offers(kind: RunChangeKind): boolean {
    return offersChange(this.identity, this._run, kind);
  }

  /** The run was deleted (from this view or elsewhere). */
  get deleted(): boolean {
    return this._deleted;
  }

  get run(): IRun | null {
    return this._run;
  }

  get params(): IParam[] {
    return this._params;
  }

  get cells(): ICell[] {
    return this._cells;
  }

  get metricKeys(): IMetricKey[] {
    return this._metricKeys;
  }

  get gpu(): IGpuSeries | null {
    return this._gpu;
  }

  get children(): IRun[] {
    return this._children;
  }

  /** The run this one reran (name and status), once loaded. */
  get parent(): IRun | null {
    return this._parent;
  }

  get actionError(): string | null {
    return this._actionError;
  }

  get loading(): boolean {
    return this._run === null && this.error === null;
  }

  /** The series of a charted metric. */
  series(key: string): ISeriesState {
    return this._series.get(key) ?? emptySeries();
  }

  /** The metrics that get a chart. */
  get chartedKeys(): string[] {
    return this._metricKeys.slice(0, MAX_CHARTS).map(k => k.key);
  }

  /** Load everything (again). */
  async load(): Promise<void> {
    await Promise.all(
      (['run', 'params', 'cells', 'metrics', 'gpu', 'children'] as Part[]).map(
        part => this._load(part)
      )
    );
  }

  /** Show a metric's step range at full resolution (null: the whole series). */
  zoom(key: string, range: StepRange): void {
    const state = this._series.get(key) ?? emptySeries();
    this._series.set(key, { ...state, range });
    void this._loadSeries(key);
  }

  /**
   * Change the run (rename, tags, notes, pin, delete, cancel). A refusal's message (a run of
   * someone else's: 403, the server's words) is shown in this view. Whether it went through.
   */
  async change(change: RunChange): Promise<boolean> {
    this._actionError = null;
    this.emit();
    let ok = true;
    try {
      const changed = await applyRunChange(this.id, change);
      if (changed) {
        this._run = { ...changed, cells: null };
      } else if (change.kind === 'delete') {
        this._deleted = true;
      }
    } catch (error) {
      ok = false;
      this._actionError = errorText(error);
      this.identity?.noteRefusal(error);
    }
    if (change.kind === 'cancel') {
      void this._load('run');
    }
    this.emit();
    return ok;
  }

  /** Say why an action on the run failed (null: clear it). */
  setActionError(message: string | null): void {
    this._actionError = message;
    this.emit();
  }

  private async _load(part: Part): Promise<void> {
    const signal = this.signal;
    try {
      switch (part) {
        case 'run':
          this._run = await getRun(this.id, signal);
          this.setError(null);
          if (this._run.parent_id && this._parent?.id !== this._run.parent_id) {
            void this._load('parent');
          }
          break;
        case 'parent': {
          const parentId = this._run?.parent_id;
          if (parentId) {
            const page = await listRuns(
              { filter: `id = "${parentId}"`, limit: 1 },
              signal
            );
            this._parent = page.runs[0] ?? null;
          }
          break;
        }
        case 'params':
          this._params = await getParams(this.id, signal);
          break;
        case 'cells':
          this._cells = await getCells(this.id, signal);
          break;
        case 'metrics':
          this._metricKeys = await getMetricKeys(this.id, signal);
          await Promise.all(this.chartedKeys.map(key => this._loadSeries(key)));
          break;
        case 'gpu':
          this._gpu = await getGpuSeries(this.id, CHART_POINTS, signal);
          break;
        case 'children':
          this._children = (
            await listRuns(
              {
                filter: `parent = "${this.id}"`,
                sort: '-created_at',
                limit: CHILDREN_LIMIT
              },
              signal
            )
          ).runs;
          break;
      }
    } catch (error) {
      if (signal.aborted) {
        return;
      }
      if (part === 'run') {
        this.setError(error);
      }
    }
    this.emit();
  }

  private async _loadSeries(key: string): Promise<void> {
    const signal = this.signal;
    const state = this._series.get(key) ?? emptySeries();
    const range = state.range;
    const token = (this._seriesTokens.get(key) ?? 0) + 1;
    this._seriesTokens.set(key, token);
    this._series.set(key, { ...state, loading: true });
    this.emit();
    try {
      const series = await getMetricSeries(
        this.id,
        key,
        { points: CHART_POINTS, ...rangeParams(range) },
        signal
      );
      if (this._seriesTokens.get(key) !== token) {
        return; // a newer zoom superseded this one
      }
      this._series.set(key, { series, range, loading: false, error: null });
    } catch (error) {
      if (signal.aborted || this._seriesTokens.get(key) !== token) {
        return;
      }
      this._series.set(key, {
        ...state,
        loading: false,
        error: errorText(error)
      });
    }
    this.emit();
  }

  protected onEvents(events: IRunEvent[]): void {
    for (const event of events) {
      if (event.run_id === this.id) {
        switch (event.type) {
          case 'run':
            if (event.data.deleted) {
              this._deleted = true;
              this.emit();
              break;
            }
            this._later('run', 100);
            this._later('gpu', LIVE_DELAY_MS);
            break;
          case 'cells':
            this._later('cells', LIVE_DELAY_MS);
            this._later('gpu', LIVE_DELAY_MS);
            break;
          case 'metrics':
            this._later('metrics', LIVE_DELAY_MS);
            break;
          case 'params':
            this._later('params', LIVE_DELAY_MS);
            this._later('run', LIVE_DELAY_MS);
            break;
          case 'outputs':
            this._later('run', LIVE_DELAY_MS);
            break;
        }
      } else if (
        event.type === 'run' &&
        event.run_id &&
        (event.data.status === 'queued' ||
          this._children.some(c => c.id === event.run_id))
      ) {
        // A new run may be a rerun of this one; a child's status moved.
        this._later('children', 300);
      }
    }
  }

  /** Load a part after `delay` ms, once however many events asked for it meanwhile. */
  private _later(part: Part, delay: number): void {
    let later = this._laterParts.get(part);
    if (!later) {
      later = this.later(() => this._load(part));
      this._laterParts.set(part, later);
    }
    later.schedule(delay);
  }

  private _run: IRun | null = null;
  private _params: IParam[] = [];
  private _cells: ICell[] = [];
  private _metricKeys: IMetricKey[] = [];
  private _series = new Map<string, ISeriesState>();
  private _seriesTokens = new Map<string, number>();
  private _gpu: IGpuSeries | null = null;
  private _children: IRun[] = [];
  private _parent: IRun | null = null;
  private _actionError: string | null = null;
  private _deleted = false;
  private _laterParts = new Map<Part, Later>();
}
