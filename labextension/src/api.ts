/**
 * Typed client for the jupyter-mlp server routes (`<base_url>/mlp/api`, see
 * jupyter_mlp/server/openapi.yaml): the only module that talks to the server.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';
import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

/**
 * A metric value as the server reports it: non-finite floats arrive as the strings
 * `'NaN'`, `'Infinity'` and `'-Infinity'`.
 */
export type MetricValue = number | string | null;

export type RunStatus =
  | 'queued'
  | 'running'
  | 'finished'
  | 'failed'
  | 'interrupted'
  | 'lost'
  | 'cancelled';

/** A JSON value (parameters and output values are JSON data). */
export type JSONValue =
  null | boolean | number | string | JSONValue[] | { [key: string]: JSONValue };

export interface IRunError {
  ename: string;
  evalue: string;
}

export interface IOutput {
  name: string;
  kind: 'value' | 'artifact';
  value?: JSONValue;
  blob?: string;
  size?: number;
  filename?: string;
  created_at?: number;
}

export interface IGitInfo {
  commit?: string | null;
  branch?: string | null;
  dirty?: boolean | null;
  /** Hash of the diff's blob. */
  diff?: string | null;
  [key: string]: unknown;
}

export interface IEnvironment {
  python?: string;
  packages?: Record<string, string>;
  [key: string]: unknown;
}

export interface IGpuDevice {
  index: number;
  name?: string;
  memory_total?: number;
}

export interface IGpuRunFigures {
  util_mean?: number | null;
  util_max?: number | null;
  mem_peak?: number | null;
  proc_mem_peak?: number | null;
  energy_j?: number | null;
}

export interface IGpuInfo {
  enabled?: boolean;
  reason?: string | null;
  devices?: IGpuDevice[];
  run?: Record<string, IGpuRunFigures>;
  notes?: string[] | string | null;
}

/** One tracked run: a listing row carries the summary fields, `GET /runs/{id}` all of them. */
export interface IRun {
  id: string;
  name: string;
  project: string;
  status: RunStatus | string;
  kind?: string;
  parent_id?: string | null;
  pipeline_run_id?: string | null;
  stage?: string | null;
  notebook?: string | null;
  kernel?: string | null;
  host?: string | null;
  user?: string | null;
  /** Seconds since the epoch. */
  created_at?: number | null;
  started_at: number | null;
  ended_at: number | null;
  heartbeat_at?: number | null;
  duration?: number | null;
  pinned?: boolean;
  tags?: string[];
  notes?: string | null;
  error?: IRunError | null;
  params?: Record<string, JSONValue>;
  metrics: Record<string, MetricValue>;
  /** How many cells ran, where the server reports it. */
  cells?: number | null;
  outputs?: IOutput[];
  env?: IEnvironment | null;
  git?: IGitInfo | null;
  gpu?: IGpuInfo | null;
}

/** One page of runs; `next` is the cursor of the following page, if any. */
export interface IRunsPage {
  runs: IRun[];
  next: string | null;
}

export interface IListRunsParams {
  project?: string;
  /** An expression in the run filter language. */
  filter?: string;
  /** A run column, `metrics.NAME` or `params.NAME`; `-` first for descending. */
  sort?: string;
  limit?: number;
  cursor?: string;
}

export interface IRunPatch {
  name?: string;
  tags?: string[];
  pinned?: boolean;
  notes?: string;
}

/** A parameter with the Python type it was recorded with and where it came from. */
export interface IParam {
  key: string;
  value: JSONValue;
  type: string | null;
  source?: string | null;
}

export interface ICellGpu {
  util_mean?: number | null;
  util_max?: number | null;
  mem_peak?: number | null;
  proc_mem_peak?: number | null;
  energy_j?: number | null;
}

export interface ICell {
  seq: number;
  cell_id: string | null;
  execution_count: number | null;
  source?: string | null;
  started_at: number | null;
  duration: number | null;
  status: 'ok' | 'error' | 'interrupted' | string;
  error?: { ename?: string; evalue?: string; [key: string]: unknown } | null;
  gpu?: Record<string, ICellGpu> | null;
}

export interface IMetricKey {
  key: string;
  step: number;
  value: MetricValue;
  count: number;
}

/** `[step, value, min, max, time]`, one per bucket of the downsampled series. */
export type MetricPoint = [
  number,
  MetricValue,
  MetricValue,
  MetricValue,
  number
];

export interface IMetricSeries {
  key: string;
  /** Points in the requested step range before downsampling. */
  total: number;
  points: MetricPoint[];
}

export interface IMetricSeriesParams {
  points?: number;
  /** First step (zoom). */
  start?: number;
  /** Last step (zoom). */
  end?: number;
}

export interface IGpuSample {
  time: number;
  util?: number | null;
  util_min?: number | null;
  util_max?: number | null;
  mem_used?: number | null;
  mem_used_max?: number | null;
  proc_mem?: number | null;
  power?: number | null;
  temp?: number | null;
  sm_clock?: number | null;
}

export interface IGpuSeries {
  gpus: Record<string, IGpuSample[]>;
}

export interface ICompareRun {
  id: string;
  name: string;
  project: string;
  status: string;
  started_at: number | null;
  ended_at: number | null;
  duration: number | null;
  params: Record<string, JSONValue>;
  metrics: Record<string, MetricValue>;
  tags: string[];
  pinned: boolean;
}

export interface ICompare {
  runs: ICompareRun[];
  params: string[];
  params_differ: string[];
  metrics: string[];
}

export type EventType = 'run' | 'cells' | 'metrics' | 'params' | 'outputs';

export interface IRunEvent {
  id: number;
  time: number;
  run_id: string | null;
  type: EventType | string;
  data: Record<string, unknown>;
}

export interface IEventsPage {
  events: IRunEvent[];
  last: number;
}

export interface IExecutor {
  name: string;
  /** Jobs it runs at once. */
  slots?: number | null;
  running?: number;
  queued?: number;
}

export interface IExecutors {
  executors: IExecutor[];
  default: string;
}

export interface IRerunRequest {
  /** New values of the parameters to change (the others stay as the run had them). */
  params: Record<string, JSONValue>;
  executor?: string;
  /** GPUs for the new run; left out: as many as the run had. */
  gpus?: number;
  allow_new?: boolean;
}

/** An error status from a route, with the server's `message` and, for filters, `position`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly position: number | null = null
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/**
 * Call a route under `<base_url>/mlp/api/` and return its decoded JSON body.
 *
 * Throws `ServerConnection.NetworkError` when the server cannot be reached and `ApiError` (with
 * the server's message, and the position of a filter error) on an error status.
 */
export async function requestAPI<T>(
  path: string,
  init: RequestInit = {}
): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, 'mlp/api', path);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    if (error instanceof ServerConnection.NetworkError) {
      throw error;
    }
    throw new ServerConnection.NetworkError(error as TypeError);
  }
  const text = await response.text();
  if (!response.ok) {
    const body = errorBody(text);
    throw new ApiError(
      response.status,
      body.message ?? (response.statusText || `HTTP ${response.status}`),
      body.position
    );
  }
  return (text ? JSON.parse(text) : undefined) as T;
}

function query(params: object): string {
  const out: Record<string, string | number> = {};
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') {
      out[key] = value as string | number;
    }
  }
  return URLExt.objectToQueryString(out);
}

function runPath(id: string, ...parts: string[]): string {
  return ['runs', encodeURIComponent(id), ...parts].join('/');
}

const JSON_HEADERS = { 'Content-Type': 'application/json' };

/** `GET /runs`: one page of runs (newest first unless `sort` says otherwise). */
export function listRuns(
  params: IListRunsParams = {},
  signal?: AbortSignal
): Promise<IRunsPage> {
  return requestAPI<IRunsPage>('runs' + query(params), { signal });
}

/** `GET /runs/{id}`: the run whole (params, latest metrics, outputs, environment, git, GPU). */
export function getRun(id: string, signal?: AbortSignal): Promise<IRun> {
  return requestAPI<IRun>(runPath(id), { signal });
}

/** `PATCH /runs/{id}`: rename, tag, pin or annotate; returns the changed run. */
export function patchRun(id: string, changes: IRunPatch): Promise<IRun> {
  return requestAPI<IRun>(runPath(id), {
    method: 'PATCH',
    body: JSON.stringify(changes),
    headers: JSON_HEADERS
  });
}

/** `DELETE /runs/{id}`. */
export function deleteRun(
  id: string
): Promise<{ deleted: string; blobs_removed: number }> {
  return requestAPI(runPath(id), { method: 'DELETE' });
}

/** `GET /runs/{id}/params`: parameters with their Python types. */
export async function getParams(
  id: string,
  signal?: AbortSignal
): Promise<IParam[]> {
  return (
    await requestAPI<{ params: IParam[] }>(runPath(id, 'params'), {
      signal
    })
  ).params;
}

/** `GET /runs/{id}/cells`: every cell execution in order. */
export async function getCells(
  id: string,
  signal?: AbortSignal
): Promise<ICell[]> {
  return (
    await requestAPI<{ cells: ICell[] }>(runPath(id, 'cells'), {
      signal
    })
  ).cells;
}

/** `GET /runs/{id}/outputs`: named values and artifacts. */
export async function getOutputs(
  id: string,
  signal?: AbortSignal
): Promise<IOutput[]> {
  return (
    await requestAPI<{ outputs: IOutput[] }>(runPath(id, 'outputs'), {
      signal
    })
  ).outputs;
}

/** `GET /runs/{id}/metrics`: the metric names with their latest value and point count. */
export async function getMetricKeys(
  id: string,
  signal?: AbortSignal
): Promise<IMetricKey[]> {
  return (
    await requestAPI<{ keys: IMetricKey[] }>(runPath(id, 'metrics'), {
      signal
    })
  ).keys;
}

/** `GET /runs/{id}/metrics?key=`: one metric downsampled on the server (min/max per bucket). */
export function getMetricSeries(
  id: string,
  key: string,
  params: IMetricSeriesParams = {},
  signal?: AbortSignal
): Promise<IMetricSeries> {
  return requestAPI<IMetricSeries>(
    runPath(id, 'metrics') + query({ key, ...params }),
    { signal }
  );
}

/** `GET /runs/{id}/gpu`: the GPU timeline per GPU, downsampled. */
export function getGpuSeries(
  id: string,
  points = 1000,
  signal?: AbortSignal
): Promise<IGpuSeries> {
  return requestAPI<IGpuSeries>(runPath(id, 'gpu') + query({ points }), {
    signal
  });
}

export type NotebookWhich = 'start' | 'end' | 'output';

/** `GET /runs/{id}/notebook`: the notebook at the run's start, end, or as a job executed it. */
export function getNotebook(
  id: string,
  which: NotebookWhich = 'start'
): Promise<Record<string, unknown>> {
  return requestAPI(runPath(id, 'notebook') + query({ which }));
}

/** The download address of a file the run references (artifact, snapshot, git diff). */
export function blobUrl(id: string, hash: string): string {
  const settings = ServerConnection.makeSettings();
  return URLExt.join(
    settings.baseUrl,
    'mlp/api',
    runPath(id, 'blobs', encodeURIComponent(hash))
  );
}

/** `GET /compare?ids=`: runs side by side, with the params that differ. */
export function compareRuns(
  ids: string[],
  signal?: AbortSignal
): Promise<ICompare> {
  return requestAPI<ICompare>('compare' + query({ ids: ids.join(',') }), {
    signal
  });
}

/** `POST /runs/{id}/rerun`: queue a rerun; returns the new run's id. */
export function rerun(
  id: string,
  request: IRerunRequest
): Promise<{ id: string }> {
  return requestAPI(runPath(id, 'rerun'), {
    method: 'POST',
    body: JSON.stringify(request),
    headers: JSON_HEADERS
  });
}

/** `POST /runs/{id}/cancel`: cancel a queued or running job. */
export function cancelRun(id: string): Promise<unknown> {
  return requestAPI(runPath(id, 'cancel'), { method: 'POST' });
}

/** `GET /executors`: where reruns can go, with their load. */
export function getExecutors(signal?: AbortSignal): Promise<IExecutors> {
  return requestAPI<IExecutors>('executors', { signal });
}

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
 * The live change feed: long-polls `GET /events` and emits each batch of events.
 *
 * Starts from the newest event (history is read through the list routes); on errors it waits
 * 1 s, 2 s, 4 s ... up to 30 s before the next try. Disposing aborts the request in flight.
 */
export class EventFeed implements IDisposable {
  constructor(private readonly _timeout = 25) {}

  /** Each batch of new events, in id order. */
  get received(): ISignal<this, IRunEvent[]> {
    return this._received;
  }

  /** Emitted with `true` after the feed recovers and `false` when a request failed. */
  get connectionChanged(): ISignal<this, boolean> {
    return this._connectionChanged;
  }

  get isRunning(): boolean {
    return this._controller !== null;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  /** Start polling (a no-op while running). */
  start(): void {
    if (this._controller || this._isDisposed) {
      return;
    }
    const controller = new AbortController();
    this._controller = controller;
    void this._loop(controller.signal);
  }

  /** Stop polling; `start()` resumes from the newest event. */
  stop(): void {
    this._controller?.abort();
    this._controller = null;
    this._last = null;
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this.stop();
    this._isDisposed = true;
    Signal.clearData(this);
  }

  private async _loop(signal: AbortSignal): Promise<void> {
    let delay = 0;
    let connected = true;
    while (!signal.aborted) {
      try {
        if (delay) {
          await sleep(delay, signal);
        }
        if (this._last === null) {
          this._last = (await getEvents(null, 0, signal)).last;
        }
        const page = await getEvents(this._last, this._timeout, signal);
        if (signal.aborted) {
          return;
        }
        this._last = Math.max(this._last, page.last);
        delay = 0;
        if (!connected) {
          connected = true;
          this._connectionChanged.emit(true);
        }
        if (page.events.length) {
          this._received.emit(page.events);
        }
      } catch (error) {
        if (signal.aborted) {
          return;
        }
        delay = Math.min(delay ? delay * 2 : 1000, 30000);
        if (connected) {
          connected = false;
          this._connectionChanged.emit(false);
        }
      }
    }
  }

  private _controller: AbortController | null = null;
  private _last: number | null = null;
  private _isDisposed = false;
  private _received = new Signal<this, IRunEvent[]>(this);
  private _connectionChanged = new Signal<this, boolean>(this);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise(resolve => {
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}

/** The `message` and `position` of a server error body, if the body is JSON and has them. */
function errorBody(text: string): {
  message?: string;
  position: number | null;
} {
  try {
    const { message, position } = JSON.parse(text) as {
      message?: unknown;
      position?: unknown;
    };
    return {
      message: typeof message === 'string' && message ? message : undefined,
      position: typeof position === 'number' ? position : null
    };
  } catch {
    return { position: null };
  }
}
