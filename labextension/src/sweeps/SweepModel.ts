/**
 * One sweep, live: `GET /sweeps/{id}` about once a second (a `Poll`) while it is not final, then
 * no more; the brushed trials of the parallel plot (the table shows only those); cancel.
 */
import { Poll } from '@lumino/polling';

import { ApiError, errorText, JSONValue } from '../api';
import { cancelSweep, getSweep } from '../api/sweeps';
import { ISweep, ISweepDimension, ISweepTrial } from '../api/types';
import { Identity } from '../model/Identity';
import { LiveModel } from '../model/LiveModel';

const FINAL = new Set(['finished', 'failed', 'cancelled']);
const POLL_MS = 1000;

export function isFinal(status: string): boolean {
  return FINAL.has(status);
}

/** A searched parameter of the sweep and how its axis is drawn. */
export interface ISearched {
  name: string;
  dim: ISweepDimension;
  /** Category axis (choices), log axis (log ranges) or value axis. */
  axis: 'category' | 'log' | 'value';
  /** The category labels (choices), in the order the space gives them. */
  categories: string[];
}

export function searchedParams(sweep: ISweep | null): ISearched[] {
  const out: ISearched[] = [];
  for (const [name, dim] of Object.entries(sweep?.space ?? {})) {
    if (dim.kind === 'fixed') {
      continue;
    }
    if (dim.kind === 'range') {
      out.push({ name, dim, axis: dim.log ? 'log' : 'value', categories: [] });
    } else {
      out.push({
        name,
        dim,
        axis: 'category',
        categories: (dim.choices ?? []).map(categoryLabel)
      });
    }
  }
  return out;
}

/** How a choice appears on a category axis and in the table. */
export function categoryLabel(value: JSONValue | undefined): string {
  return typeof value === 'string' ? value : JSON.stringify(value ?? null);
}

export class SweepModel extends LiveModel {
  constructor(
    readonly id: string,
    readonly identity: Identity | null = null
  ) {
    super(null);
    identity?.changed.connect(() => this.emit(), this);
    this._poll = new Poll({
      auto: false,
      factory: () => this._fetch(),
      frequency: { interval: POLL_MS, backoff: true, max: 10000 },
      standby: 'never',
      name: 'jupyter-mlp:sweep'
    });
  }

  get sweep(): ISweep | null {
    return this._sweep;
  }

  get trials(): readonly ISweepTrial[] {
    return this._sweep?.trials ?? [];
  }

  get searched(): ISearched[] {
    return this._searched;
  }

  get final(): boolean {
    return this._sweep !== null && isFinal(this._sweep.status);
  }

  /** Whether the model still asks the server (the sweep is not final). */
  get polling(): boolean {
    return this._polling;
  }

  /** The trial numbers inside the parallel plot's brush; null: no brush. */
  get brushed(): ReadonlySet<number> | null {
    return this._brushed;
  }

  get actionError(): string | null {
    return this._actionError;
  }

  get cancelling(): boolean {
    return this._cancelling;
  }

  /** Whether the sweep is this user's. */
  get mine(): boolean {
    return !!this.identity?.isMine(this._sweep?.owner);
  }

  /** Whether Cancel sweep is offered: while it runs, to its owner and the admins. */
  get offersCancel(): boolean {
    return (
      !!this._sweep &&
      !this.final &&
      (this.identity?.mayChange(this._sweep.owner) ?? true)
    );
  }

  dispose(): void {
    this._poll.dispose();
    super.dispose();
  }

  /** Start following (the first request is now). */
  load(): void {
    this._polling = true;
    void this._poll.start();
  }

  setBrushed(numbers: number[] | null): void {
    const next = numbers === null ? null : new Set(numbers);
    const same =
      next === this._brushed ||
      (next !== null &&
        this._brushed !== null &&
        next.size === this._brushed.size &&
        [...next].every(n => this._brushed!.has(n)));
    if (!same) {
      this._brushed = next;
      this.emit();
    }
  }

  async cancel(): Promise<void> {
    this._cancelling = true;
    this._actionError = null;
    this.emit();
    try {
      await cancelSweep(this.id);
      if (!this._polling) {
        this.load();
      } else {
        void this._poll.refresh();
      }
    } catch (error) {
      this._actionError = errorText(error);
      this.identity?.noteRefusal(error);
    } finally {
      this._cancelling = false;
      this.emit();
    }
  }

  private async _fetch(): Promise<void> {
    try {
      const sweep = await getSweep(this.id, this.signal);
      this._sweep = sweep;
      const searched = searchedParams(sweep);
      if (JSON.stringify(searched) !== JSON.stringify(this._searched)) {
        this._searched = searched;
      }
      this.setError(null);
      if (isFinal(sweep.status)) {
        this._polling = false;
        void this._poll.stop();
      }
    } catch (error) {
      if (this.signal.aborted) {
        return;
      }
      this.setError(
        error instanceof ApiError &&
          error.status === 404 &&
          error.message === 'Not Found'
          ? 'This server has no sweep routes (GET /mlp/api/sweeps/{id}).'
          : error
      );
      if (error instanceof ApiError && error.status === 404) {
        this._polling = false;
        void this._poll.stop();
      } else {
        throw error; // the Poll backs off
      }
    } finally {
      this.emit();
    }
  }

  private _poll: Poll;
  private _sweep: ISweep | null = null;
  private _searched: ISearched[] = [];
  private _brushed: Set<number> | null = null;
  private _polling = false;
  private _cancelling = false;
  private _actionError: string | null = null;
}
