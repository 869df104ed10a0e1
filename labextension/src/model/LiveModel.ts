/**
 * The base of every model the views render: a coalesced `changed` signal, `dispose`, one abort
 * signal for its requests, the live event feed (held while the model follows it), an error, and
 * `Later` calls (Poll-based) that are cancelled with the model.
 */
import { IDisposable } from '@lumino/disposable';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { errorText, EventFeed, IRunEvent } from '../api';

export abstract class LiveModel implements IDisposable {
  constructor(feed: EventFeed | null) {
    this._feed = feed;
    this.follow(feed !== null);
  }

  /** Emitted (at most once per microtask) whenever anything shown changed. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  /** Why the model's data could not be loaded (null: it could, or has not tried yet). */
  get error(): string | null {
    return this._error;
  }

  /** Whether the model follows the event feed now. */
  get following(): boolean {
    return this._hold !== null;
  }

  /** Follow the event feed (or stop: a paused panel). */
  follow(on: boolean): void {
    if (on && !this._hold && this._feed && !this._isDisposed) {
      this._hold = this._feed.hold();
      this._feed.received.connect(this._onReceived, this);
    } else if (!on && this._hold) {
      this._hold.dispose();
      this._hold = null;
      this._feed?.received.disconnect(this._onReceived, this);
    }
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this.follow(false);
    this._lifetime.abort();
    for (const later of this._laters) {
      later.dispose();
    }
    Signal.clearData(this);
  }

  /** A batch of events from the feed (while following). */
  protected onEvents(events: IRunEvent[]): void {
    void events;
  }

  /** Aborted when the model is disposed: pass it to every request. */
  protected get signal(): AbortSignal {
    return this._lifetime.signal;
  }

  protected setError(error: unknown): void {
    this._error = error === null ? null : errorText(error);
    this.emit();
  }

  /** Say `changed` once the current microtask is over (many updates, one render). */
  protected emit(): void {
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

  /** A call run after a delay, disposed with the model. */
  protected later(fn: () => unknown): Later {
    const later = new Later(fn);
    this._laters.push(later);
    return later;
  }

  private _onReceived(_: EventFeed, events: IRunEvent[]): void {
    if (!this._isDisposed) {
      this.onEvents(events);
    }
  }

  private _feed: EventFeed | null;
  private _hold: IDisposable | null = null;
  private _error: string | null = null;
  private _lifetime = new AbortController();
  private _laters: Later[] = [];
  private _emitQueued = false;
  private _isDisposed = false;
  private _changed = new Signal<this, void>(this);
}

/**
 * A function run once after a delay however often it was asked for meanwhile (a `Poll` that
 * never repeats by itself): `schedule(ms)` keeps an earlier due time, `cancel()` drops it.
 */
export class Later implements IDisposable {
  constructor(fn: () => unknown) {
    this._poll = new Poll<void, unknown, 'invoked'>({
      auto: false,
      factory: async () => {
        this._due = Infinity;
        try {
          await fn();
        } catch (error) {
          console.error('jupyter-mlp:', error);
        }
      },
      frequency: { interval: Poll.NEVER, max: Poll.NEVER, backoff: false },
      standby: 'never'
    });
  }

  get isDisposed(): boolean {
    return this._poll.isDisposed;
  }

  /** Whether a call is due. */
  get pending(): boolean {
    return this._due !== Infinity;
  }

  /** Run after `ms` (unless already due sooner). */
  schedule(ms: number): void {
    const due = Date.now() + ms;
    if (this.isDisposed || due >= this._due) {
      return;
    }
    this._due = due;
    void this._poll.schedule({ interval: ms, phase: 'invoked' });
  }

  /** Run after `ms` from now, whatever was due before (typing: the last keystroke counts). */
  restart(ms: number): void {
    this._due = Infinity;
    this.schedule(ms);
  }

  cancel(): void {
    if (this.pending) {
      this._due = Infinity;
      void this._poll.stop();
    }
  }

  dispose(): void {
    this._poll.dispose();
  }

  private _poll: Poll<void, unknown, 'invoked'>;
  private _due = Infinity;
}
