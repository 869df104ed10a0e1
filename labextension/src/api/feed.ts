/** The live change feed (`GET /events`, long-polled) and the one subscription every model uses. */
import { IDisposable } from '@lumino/disposable';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { query, requestAPI } from './client';
import { IEventsPage, IRunEvent } from './types';

/** `GET /events`: long-poll the change feed (without `after`: only learn the newest id). */
export function getEvents(
  after: number | null,
  timeout: number,
  signal?: AbortSignal
): Promise<IEventsPage> {
  return requestAPI<IEventsPage>(
    'events' + (after === null ? '' : query({ after, timeout })),
    { signal }
  );
}

/**
 * The live change feed: long-polls `GET /events` (a `Poll` that asks again as soon as a request
 * returns) and emits each batch of events. It runs while anybody holds it (`hold()`).
 *
 * Starts from the newest event (history is read through the list routes); after a failure it
 * waits about 1 s, then longer up to 30 s. Releasing the last hold aborts the request in flight.
 */
export class EventFeed implements IDisposable {
  constructor(private readonly _timeout = 25) {
    this._poll = new Poll({
      auto: false,
      factory: () => this._once(),
      frequency: { interval: RETRY_MS, backoff: true, max: MAX_RETRY_MS },
      standby: 'never',
      name: 'jupyter-mlp:events'
    });
    this._poll.ticked.connect((_, state) => {
      if (state.phase === 'resolved' || state.phase === 'reconnected') {
        // A long poll returned: ask again at once (the wait happens on the server).
        void this._poll.refresh();
      }
      if (state.phase === 'rejected' && this._connected) {
        this._connected = false;
        this._connectionChanged.emit(false);
      } else if (state.phase === 'reconnected' && !this._connected) {
        this._connected = true;
        this._connectionChanged.emit(true);
      }
    });
  }

  /** Each batch of new events, in id order. */
  get received(): ISignal<this, IRunEvent[]> {
    return this._received;
  }

  /** Emitted with `true` after the feed recovers and `false` when a request failed. */
  get connectionChanged(): ISignal<this, boolean> {
    return this._connectionChanged;
  }

  get isRunning(): boolean {
    return this._holds > 0;
  }

  get isDisposed(): boolean {
    return this._poll.isDisposed;
  }

  /** Keep the feed running until the returned handle is disposed. */
  hold(): IDisposable {
    this._holds++;
    if (this._holds === 1) {
      this._controller = new AbortController();
      void this._poll.start();
    }
    let released = false;
    return {
      get isDisposed() {
        return released;
      },
      dispose: () => {
        if (released) {
          return;
        }
        released = true;
        this._holds--;
        if (this._holds === 0) {
          this._stop();
        }
      }
    };
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._stop();
    this._poll.dispose();
    Signal.clearData(this);
  }

  private _stop(): void {
    this._controller?.abort();
    this._controller = null;
    this._last = null;
    void this._poll.stop();
  }

  /** One long poll (the first only learns the newest event id). */
  private async _once(): Promise<void> {
    const signal = this._controller?.signal;
    if (!signal || signal.aborted) {
      return;
    }
    if (this._last === null) {
      this._last = (await getEvents(null, 0, signal)).last;
    }
    const page = await getEvents(this._last, this._timeout, signal);
    if (signal.aborted) {
      return;
    }
    this._last = Math.max(this._last, page.last);
    if (page.events.length) {
      this._received.emit(page.events);
    }
  }

  private _poll: Poll;
  private _holds = 0;
  private _connected = true;
  private _controller: AbortController | null = null;
  private _last: number | null = null;
  private _received = new Signal<this, IRunEvent[]>(this);
  private _connectionChanged = new Signal<this, boolean>(this);
}

const RETRY_MS = 1000;
const MAX_RETRY_MS = 30000;

let shared: EventFeed | null = null;

/** The page's one event feed: the runs panel, run views, compare and pipeline editors share it. */
export function sharedFeed(): EventFeed {
  if (!shared || shared.isDisposed) {
    shared = new EventFeed();
  }
  return shared;
}
