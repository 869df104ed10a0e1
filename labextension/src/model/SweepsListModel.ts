/**
 * The sweeps section of the runs sidebar: the newest sweeps (`GET /sweeps`, counts by status),
 * fetched again shortly after the event feed says a sweep or one of its trials moved (a `sweep`
 * event), so running sweeps count their trials live. Never polls by itself.
 */
import { ApiError, EventFeed, IRunEvent, ISweep } from '../api';
import { listSweeps } from '../api/sweeps';
import { LiveModel } from './LiveModel';

/** Sweeps listed at most (newest first). */
export const SWEEPS_LISTED = 20;
const LIVE_DELAY_MS = 400;

/** Trials that ended (finished, pruned, failed, cancelled) of a sweep's counts. */
export function endedTrials(sweep: ISweep): number {
  const c = sweep.counts ?? {};
  return (
    (c.finished ?? 0) + (c.pruned ?? 0) + (c.failed ?? 0) + (c.cancelled ?? 0)
  );
}

export class SweepsListModel extends LiveModel {
  constructor(feed: EventFeed | null) {
    super(feed);
    this.follow(false); // until a panel shows the section
  }

  get sweeps(): readonly ISweep[] {
    return this._sweeps;
  }

  get loaded(): boolean {
    return this._loaded;
  }

  /** False where the server has no sweep routes (the section is not shown). */
  get available(): boolean {
    return this._available;
  }

  /** The section's fold, kept while the sidebar is closed and opened again. */
  get open(): boolean {
    return this._open;
  }

  setOpen(open: boolean): void {
    if (open !== this._open) {
      this._open = open;
      this.emit();
    }
  }

  /**
   * The panel shows the section: load now, and follow the feed while `live`. Returns the
   * stop for the panel's unmount (then nothing is followed; the next start loads again).
   */
  start(live: boolean): () => void {
    this.follow(live);
    void this.refresh();
    return () => this.follow(false);
  }

  async refresh(): Promise<void> {
    const signal = this.signal;
    try {
      this._sweeps = await listSweeps(SWEEPS_LISTED, signal);
      this._loaded = true;
      this.setError(null);
    } catch (error) {
      if (signal.aborted) {
        return;
      }
      if (error instanceof ApiError && error.status === 404) {
        this._available = false;
      }
      this.setError(error);
    }
    this.emit();
  }

  protected onEvents(events: IRunEvent[]): void {
    if (events.some(e => e.type === 'sweep')) {
      this._reload.schedule(LIVE_DELAY_MS);
    }
  }

  private _reload = this.later(() => this.refresh());
  private _sweeps: ISweep[] = [];
  private _loaded = false;
  private _available = true;
  private _open = true;
}
