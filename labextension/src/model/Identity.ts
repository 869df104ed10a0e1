/**
 * Who this user is for the server (`GET /me`) and what that lets them change: in a team's store
 * a run, pipeline run or sweep is changed (renamed, tagged, pinned, annotated, deleted,
 * cancelled) only by its owner and the team's admins, so the views hide those actions elsewhere.
 * Anyone may still open, rerun, sweep, compare or use a colleague's run in a pipeline. The
 * server decides in the end: a refusal (403) is shown where the action was started, and the
 * identity is read again (it may have been stale).
 */
import { ISignal, Signal } from '@lumino/signaling';

import { ApiError, IMe, me, SINGLE_SEAT } from '../api';

export class Identity {
  /** This user (a single seat's until `load` has answered). */
  get me(): IMe {
    return this._me;
  }

  /** Whether `load` has answered (or failed) once. */
  get loaded(): boolean {
    return this._loaded;
  }

  /** Whether the store is a team's (owners are shown, Mine / Team offered). */
  get team(): boolean {
    return this._me.team;
  }

  /** Emitted when `me` changes (and when the first answer arrives). */
  get changed(): ISignal<this, IMe> {
    return this._changed;
  }

  /** Ask the server who this user is (once; `refresh` asks again). */
  load(): Promise<IMe> {
    if (!this._loading) {
      this._loading = this._fetch();
    }
    return this._loading;
  }

  /** Ask again (after a refusal: the identity held may be stale). */
  refresh(): Promise<IMe> {
    this._loading = this._fetch();
    return this._loading;
  }

  /** Whether `owner` is this user. */
  isMine(owner: string | null | undefined): boolean {
    return !!owner && owner === this._me.name;
  }

  /**
   * Whether this user may change what `owner` owns: an admin (a single seat is one) anything,
   * others their own; a thing with no recorded owner only an admin (as the server decides).
   * Nothing before the server has answered.
   */
  mayChange(owner: string | null | undefined): boolean {
    if (!this._loaded) {
      return false; // not known yet: hidden until the server says
    }
    return this._me.admin || this.isMine(owner);
  }

  /** After an action failed: a refusal means this identity may be stale, so read it again. */
  noteRefusal(error: unknown): void {
    if (error instanceof ApiError && error.status === 403) {
      void this.refresh();
    }
  }

  private async _fetch(): Promise<IMe> {
    let next: IMe;
    try {
      next = await me();
    } catch (error) {
      // The server could not say: behave as a single seat; its refusals still come through.
      console.warn('jupyter-mlp: could not read /me', error);
      next = this._loaded ? this._me : SINGLE_SEAT;
    }
    const first = !this._loaded;
    this._loaded = true;
    if (
      first ||
      next.name !== this._me.name ||
      next.admin !== this._me.admin ||
      next.team !== this._me.team
    ) {
      this._me = next;
      this._changed.emit(next);
    } else {
      this._me = next;
    }
    return next;
  }

  private _me: IMe = SINGLE_SEAT;
  private _loaded = false;
  private _loading: Promise<IMe> | null = null;
  private _changed = new Signal<this, IMe>(this);
}

let shared: Identity | null = null;

/** The page's one identity (the runs UI, the pipeline editor and the sweep views share it). */
export function sharedIdentity(): Identity {
  if (!shared) {
    shared = new Identity();
  }
  return shared;
}
