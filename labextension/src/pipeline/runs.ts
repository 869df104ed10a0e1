/**
 * The runs of one pipeline file: its history (runs from the editor and from the command line
 * alike) and the run shown on the canvas, followed live (feed events change a stage's colour at
 * once; the detail is fetched again shortly after, and polled while the run is active).
 */
import { Poll } from '@lumino/polling';

import {
  ApiError,
  cancelPipelineRun,
  errorText,
  EventFeed,
  getPipelineRun,
  IPipelineRunDetail,
  IPipelineRunSummary,
  IRunEvent,
  IStageStatus,
  IStartPipelineRun,
  listPipelineRuns,
  startPipelineRun
} from '../api';
import { LiveModel } from '../model/LiveModel';
import { jsonEqual } from './spec';

/** Stage states after which nothing changes. */
export const FINAL_STAGE_STATES = new Set([
  'cached',
  'succeeded',
  'failed',
  'skipped',
  'cancelled'
]);
/** Pipeline run states after which nothing changes. */
export const FINAL_RUN_STATES = new Set([
  'succeeded',
  'finished',
  'failed',
  'cancelled',
  'lost',
  'interrupted',
  'pruned'
]);

export interface IRunView {
  id: string;
  /** Follow the event feed (a run started here or one still active). */
  live: boolean;
  detail: IPipelineRunDetail | null;
  error: string | null;
}

export interface IPipelineRunsState {
  history: readonly IPipelineRunSummary[] | null;
  historyError: string | null;
  runView: IRunView | null;
}

const REFRESH_DELAY_MS = 120;
const HISTORY_DELAY_MS = 300;
const POLL_MS = 2000;

export class PipelineRuns extends LiveModel {
  /** `path`: the file relative to the Jupyter root (it changes when the file is renamed). */
  constructor(
    feed: EventFeed | null,
    private readonly _path: () => string
  ) {
    super(feed);
    this._poll = new Poll({
      auto: false,
      factory: () => this._refresh(),
      frequency: { interval: POLL_MS, backoff: true, max: 30000 },
      standby: 'when-hidden',
      name: 'jupyter-mlp:pipeline-run'
    });
  }

  get state(): IPipelineRunsState {
    return this._state;
  }

  dispose(): void {
    this._poll.dispose();
    super.dispose();
  }

  async refreshHistory(): Promise<void> {
    try {
      const history = await listPipelineRuns(this._path(), this.signal);
      this._set({ history, historyError: null });
    } catch (error) {
      if (this.signal.aborted) {
        return;
      }
      this._set({
        historyError:
          error instanceof ApiError && error.status === 404
            ? 'The server has no pipeline routes yet.'
            : errorText(error)
      });
    }
  }

  /** Start a run of the saved file and follow it on the canvas; its id. */
  async start(request: IStartPipelineRun): Promise<string> {
    const { id } = await startPipelineRun(request);
    this.show(id, true);
    void this.refreshHistory();
    return id;
  }

  async cancel(): Promise<void> {
    const view = this._state.runView;
    if (view) {
      await cancelPipelineRun(view.id);
      this._refreshLater.schedule(0);
    }
  }

  /** Show a pipeline run's stage states on the canvas (live: follow it while it runs). */
  show(id: string, live = true): void {
    this._stopWatching();
    this._set({ runView: { id, live, detail: null, error: null } });
    this._stageEventSeq.clear();
    if (live) {
      void this._poll.start(); // the first tick is now
    } else {
      void this._refresh();
    }
  }

  /** Back to plain editing: no run's states on the canvas. */
  closeRun(): void {
    this._stopWatching();
    this._set({ runView: null });
  }

  protected onEvents(events: IRunEvent[]): void {
    const view = this._state.runView;
    const stageRuns = new Set<string>();
    for (const status of Object.values(view?.detail?.stages ?? {})) {
      if (status.run_id) {
        stageRuns.add(status.run_id);
      }
    }
    const known = new Set((this._state.history ?? []).map(r => r.id));
    let history = this._state.history;
    let historyStale = false;
    let stages: Record<string, IStageStatus> | null = null;
    let refresh = false;
    for (const event of events) {
      const data = (event.data ?? {}) as Record<string, unknown>;
      if (event.type !== 'pipeline') {
        if (view && event.run_id && stageRuns.has(event.run_id)) {
          refresh = true;
        }
        continue;
      }
      const pid = data.pipeline_run_id;
      const status = typeof data.status === 'string' ? data.status : null;
      const stage = typeof data.stage === 'string' ? data.stage : null;
      if (typeof pid === 'string') {
        if (!known.has(pid)) {
          historyStale = true; // a new run, maybe of this file (e.g. from the command line)
        } else if (status && !stage && history) {
          // The run's own status: the history badge follows at once.
          history = history.map(r => (r.id === pid ? { ...r, status } : r));
        } else if (status && stage && history) {
          // A stage moved: the run is active (its badge must not stay "queued").
          const active = status === 'running' || status === 'queued';
          history = history.map(r =>
            r.id === pid && active && r.status === 'queued'
              ? { ...r, status: 'running' }
              : r
          );
          historyStale = historyStale || FINAL_STAGE_STATES.has(status);
        }
      }
      if (view && pid === view.id) {
        refresh = true;
        if (stage && status && view.detail) {
          // The colour changes now; the detail (run id, times, progress) follows.
          stages = stages ?? { ...view.detail.stages };
          this._stageEventSeq.set(stage, ++this._refreshSeq);
          stages[stage] = { ...(stages[stage] ?? {}), status };
          if (status === 'running' && !stages[stage].started_at) {
            stages[stage].started_at = event.time;
          }
        }
      }
    }
    if (history !== this._state.history) {
      this._set({ history });
    }
    if (stages && view?.detail) {
      this._set({ runView: { ...view, detail: { ...view.detail, stages } } });
    }
    if (refresh) {
      this._refreshLater.schedule(REFRESH_DELAY_MS);
    }
    if (historyStale) {
      this._historyLater.schedule(HISTORY_DELAY_MS);
    }
  }

  private async _refresh(): Promise<void> {
    const view = this._state.runView;
    if (!view || this.isDisposed) {
      return;
    }
    const seq = this._refreshSeq;
    let detail: IPipelineRunDetail;
    try {
      detail = await getPipelineRun(view.id, this.signal);
    } catch (error) {
      const current = this._state.runView;
      if (current && current.id === view.id && !this.signal.aborted) {
        this._set({ runView: { ...current, error: errorText(error) } });
      }
      return;
    }
    const current = this._state.runView;
    if (!current || current.id !== view.id || this.isDisposed) {
      return;
    }
    // A stage whose state an event changed while this was in flight keeps the newer state.
    for (const [stage, eventSeq] of this._stageEventSeq) {
      const shown = current.detail?.stages[stage];
      if (eventSeq > seq && shown && detail.stages?.[stage]) {
        detail.stages[stage] = {
          ...detail.stages[stage],
          status: shown.status
        };
      }
    }
    const finished = current.live && isFinished(detail);
    this._set({
      runView: {
        ...current,
        live: current.live && !finished,
        detail: keepIdentity(current.detail, detail),
        error: null
      }
    });
    if (finished) {
      this._stopWatching();
    }
    // The history's badge for this run says what the detail says.
    if (
      this._state.history?.some(
        r => r.id === detail.id && r.status !== detail.status
      )
    ) {
      this._set({
        history: this._state.history.map(r =>
          r.id === detail.id ? { ...r, status: detail.status } : r
        )
      });
    }
    if (finished) {
      void this.refreshHistory();
    }
  }

  private _stopWatching(): void {
    void this._poll.stop();
    this._refreshLater.cancel();
  }

  private _set(changes: Partial<IPipelineRunsState>): void {
    if (this.isDisposed) {
      return;
    }
    this._state = { ...this._state, ...changes };
    this.emit();
  }

  private _state: IPipelineRunsState = {
    history: null,
    historyError: null,
    runView: null
  };
  private _poll: Poll;
  private _refreshLater = this.later(() => this._refresh());
  private _historyLater = this.later(() => this.refreshHistory());
  private _refreshSeq = 0;
  private _stageEventSeq = new Map<string, number>();
}

/** A run whose pipeline or every stage reached a final state. */
export function isFinished(detail: IPipelineRunDetail): boolean {
  if (FINAL_RUN_STATES.has(detail.status)) {
    return true;
  }
  const states = Object.values(detail.stages ?? {});
  return (
    states.length > 0 &&
    states.every(s => FINAL_STAGE_STATES.has(String(s.status))) &&
    detail.status !== 'running' &&
    detail.status !== 'queued'
  );
}

/** The new detail, with the stage objects that did not change kept (memoized nodes). */
function keepIdentity(
  prev: IPipelineRunDetail | null,
  next: IPipelineRunDetail
): IPipelineRunDetail {
  if (!prev || prev.id !== next.id) {
    return next;
  }
  const stages: Record<string, IStageStatus> = {};
  for (const [name, status] of Object.entries(next.stages ?? {})) {
    const old = prev.stages?.[name];
    stages[name] = old && jsonEqual(old, status) ? old : status;
  }
  return { ...next, stages };
}
