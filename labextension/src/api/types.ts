/** The JSON shapes of the server routes (one definition each: runs, pipelines, executors, events). */
import type { IPipelineSpec } from '../pipeline/spec';

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
  | 'cancelled'
  /** a sweep trial its pruner stopped early */
  | 'pruned';

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
  /** The sweep this run is a trial of. */
  sweep_id?: string | null;
  notebook?: string | null;
  /** Hash of the notebook snapshot (the template of reruns and stages). */
  snapshot?: string | null;
  kernel?: string | null;
  host?: string | null;
  user?: string | null;
  /** Who made the run (team mode: only they and the team's admins may change it). */
  owner?: string | null;
  /** Seconds since the epoch. */
  created_at?: number | null;
  started_at: number | null;
  ended_at: number | null;
  heartbeat_at?: number | null;
  duration?: number | null;
  /** Seconds spent in cells (an interactive run's kernel idles between them). */
  busy_s?: number | null;
  /** The last cell, metric or output (seconds since the epoch). */
  last_activity_at?: number | null;
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

/**
 * A `metrics.K` / `params.K` / `outputs.K` that no run has, named by the sort or by a filter
 * that matched nothing (a typo, most often): why the list is empty or not sorted.
 */
export interface IFieldHint {
  /** The field as the server read it, e.g. `metrics.acuracy`. */
  field: string;
  /** e.g. `no run has metrics.acuracy; did you mean metrics.accuracy?` */
  message: string;
  /** Close fields that some run has (e.g. `metrics.accuracy`), the closest first. */
  suggestions: string[];
}

/** One page of runs; `next` is the cursor of the following page, if any. */
export interface IRunsPage {
  runs: IRun[];
  next: string | null;
  /**
   * The fields no run has: the sort's (first page), the filter's when it matched nothing.
   * Absent from servers that predate it.
   */
  hints?: IFieldHint[];
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
  /** Who made the run, where the server's compare route says so. */
  owner?: string | null;
}

export interface ICompare {
  runs: ICompareRun[];
  params: string[];
  params_differ: string[];
  metrics: string[];
}

/** `GET /compare/metrics`: one metric of several runs. */
export interface ICompareSeries {
  key: string;
  /** Points asked per run, as the server clamped them. */
  points: number;
  /** By run id; a run that never logged the metric is absent. */
  series: Record<string, IMetricSeries>;
}

/** `GET /me`: this user as the server knows them. */
export interface IMe {
  /** The user name runs record as `owner` (null: the server did not say). */
  name: string | null;
  /** May change any run, pipeline run or sweep of the store. */
  admin: boolean;
  /** The store is shared by a team (runs of other users are listed). */
  team: boolean;
  /** Where the store is (for the record). */
  store?: string;
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
  running?: number | null;
  queued?: number | null;
  /** Dask: the scheduler address (null: none configured). */
  scheduler?: string | null;
  /** Why it cannot take jobs now (e.g. not connected to its scheduler). */
  error?: string | null;
  workers?: number | null;
  /** Set by the server where it says so itself; else derived (see executors.ts). */
  available?: boolean;
  reason?: string | null;
}

export interface IExecutors {
  executors: IExecutor[];
  default: string | null;
}

export interface IRerunRequest {
  /** New values of the parameters to change (the others stay as the run had them). */
  params: Record<string, JSONValue>;
  executor?: string;
  /** GPUs for the new run; left out: as many as the run had. */
  gpus?: number;
  allow_new?: boolean;
}

export type NotebookWhich = 'start' | 'end' | 'output';

// --- pipelines ---------------------------------------------------------------------------------

/** What a stage's ports come from: its template run, with typed parameters and outputs. */
export interface ITemplateInfo {
  id: string;
  name: string;
  status: string;
  notebook: string | null;
  snapshot: string | null;
  params: IParam[];
  outputs: IOutput[];
  gpus: number;
}

export type StageState =
  | 'pending'
  | 'queued'
  | 'running'
  | 'cached'
  | 'succeeded'
  | 'failed'
  | 'skipped'
  | 'cancelled';

export interface IStageStatus {
  status: StageState | string;
  run_id?: string | null;
  cached_from?: string | null;
  started_at?: number | null;
  ended_at?: number | null;
  error?: unknown;
  cells_done?: number | null;
  cells_total?: number | null;
  attempts?: number | null;
  [key: string]: unknown;
}

export interface IPipelineRunSummary {
  id: string;
  name?: string | null;
  path?: string | null;
  /** The spec's hash: the pipeline version. */
  version?: string | null;
  status: string;
  params?: Record<string, JSONValue>;
  /** Who started it (only they and the team's admins may cancel it). */
  owner?: string | null;
  created_at?: number | null;
  started_at?: number | null;
  ended_at?: number | null;
  /** Running (or cancelling) while the process that drove it is gone: nothing moves it on. */
  orphaned?: boolean;
}

export interface IPipelineRunDetail extends IPipelineRunSummary {
  spec?: IPipelineSpec | null;
  stages: Record<string, IStageStatus>;
}

export interface IValidationIssue {
  level: 'error' | 'warning' | string;
  stage: string | null;
  field: string | null;
  message: string;
}

export interface IStartPipelineRun {
  /** The file's path relative to the Jupyter root. */
  path: string;
  params: Record<string, JSONValue>;
  executor?: string;
  no_cache?: boolean;
}

/** A sweep's status (jupyter_mlp/store/transitions.py, SWEEP). */
export type SweepStatus =
  'queued' | 'running' | 'finished' | 'failed' | 'cancelling' | 'cancelled';

/** A trial's status (transitions.py, TRIAL). */
export type TrialStatus =
  'running' | 'finished' | 'pruned' | 'failed' | 'cancelled';

/** One searched (or fixed) parameter of a sweep's space. */
export interface ISweepDimension {
  kind: 'range' | 'choice' | 'fixed' | string;
  low?: number | null;
  high?: number | null;
  log?: boolean | null;
  step?: number | null;
  int?: boolean | null;
  choices?: JSONValue[] | null;
  value?: JSONValue;
  type?: string | null;
}

export interface ISweepObjective {
  direction: 'maximize' | 'minimize';
  source: 'auto' | 'metric' | 'output';
  key: string;
  agg: 'last' | 'min' | 'max';
  text: string;
}

export interface ISweepTrial {
  number: number;
  run_id: string | null;
  status: TrialStatus | string;
  params: Record<string, JSONValue> | null;
  value: number | null;
  step: number | null;
  error: JSONValue;
  started_at: number | null;
  ended_at: number | null;
  run_status?: string | null;
  job_state?: string | null;
}

/** `GET /sweeps/{id}` (the list rows have no `trials`). */
export interface ISweep {
  id: string;
  name: string | null;
  template_id: string;
  space: Record<string, ISweepDimension> | null;
  objective: ISweepObjective | null;
  sampler: string;
  seed: number | null;
  budget: number;
  timeout_s: number | null;
  concurrency: number;
  executor: string | null;
  gpus: number | null;
  options: Record<string, JSONValue> | null;
  status: SweepStatus | string;
  best_trial: number | null;
  best_run_id: string | null;
  best_value: number | null;
  note: string | null;
  /** Who started it (only they and the team's admins may cancel it). */
  owner?: string | null;
  created_at: number;
  started_at: number | null;
  ended_at: number | null;
  error: JSONValue;
  counts: Partial<Record<TrialStatus | string, number>>;
  trials?: ISweepTrial[];
}

/** `POST /sweeps`: params and objective are the CLI's `-p` and `--objective` texts. */
export interface IStartSweepRequest {
  template: string;
  params: Record<string, string>;
  objective: string;
  trials?: number;
  concurrency?: number;
  sampler?: 'tpe' | 'random' | 'grid';
  seed?: number;
  prune?: boolean;
  prune_startup?: number;
  prune_warmup?: number;
  timeout?: number;
  executor?: string;
  gpus?: number;
  allow_new?: boolean;
  kernel?: string;
  name?: string;
}
