/**
 * Every server call the pipeline editor makes, through the shared `requestAPI` helper of
 * ../api.ts (to be folded into it later): pinned runs and templates, runs of a notebook,
 * executors, and the pipeline routes (validate, run, list runs, run detail, cancel). The live
 * event feed is one `EventFeed` shared by every open editor.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { IDisposable } from '@lumino/disposable';

import { ApiError, EventFeed, IRunEvent, requestAPI } from '../api';
import { IPipelineSpec, JSONValue } from './spec';

/** The fields of a run the editor uses (`GET /runs`, `GET /runs/{id}`). */
export interface IRunInfo {
  id: string;
  name: string;
  project?: string;
  status: string;
  kind?: string | null;
  notebook?: string | null;
  snapshot?: string | null;
  pinned?: boolean;
  created_at?: number | null;
  started_at?: number | null;
  ended_at?: number | null;
  params?: Record<string, JSONValue>;
  outputs?: IRunOutput[];
  gpu?: { devices?: unknown[] | null } | null;
}

export interface IRunOutput {
  name: string;
  kind: 'value' | 'artifact' | string;
  value?: JSONValue;
}

export interface IRunParam {
  key: string;
  value: JSONValue;
  type: string | null;
  source?: string | null;
}

/** What a stage's ports come from: its template run, with typed parameters and outputs. */
export interface ITemplateInfo {
  id: string;
  name: string;
  status: string;
  notebook: string | null;
  snapshot: string | null;
  params: IRunParam[];
  outputs: IRunOutput[];
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
  created_at?: number | null;
  started_at?: number | null;
  ended_at?: number | null;
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

export interface IExecutorInfo {
  name: string;
  /** How many jobs it runs at once. */
  slots?: number | null;
  running?: number | null;
  queued?: number | null;
}

export interface IStartPipelineRun {
  /** The file's path relative to the Jupyter root. */
  path: string;
  params: Record<string, JSONValue>;
  executor?: string;
  no_cache?: boolean;
}

/** The MIME type of a dragged run (the palette here, the runs sidebar's rows). */
export const RUN_MIME = 'application/x-mlp-run';

function q(params: Record<string, string | number | undefined>): string {
  const out: Record<string, string | number> = {};
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== '') {
      out[key] = value;
    }
  }
  return URLExt.objectToQueryString(out);
}

const JSON_HEADERS = { 'Content-Type': 'application/json' };

/** `GET /runs?filter=pinned = true`: the runs a pipeline can use as templates. */
export async function listPinnedRuns(
  signal?: AbortSignal
): Promise<IRunInfo[]> {
  const page = await requestAPI<{ runs: IRunInfo[] }>(
    'runs' + q({ filter: 'pinned = true', sort: '-created_at', limit: 500 }),
    { signal }
  );
  return page.runs;
}

/** `GET /runs?filter=notebook = "PATH"`: the runs of one notebook, newest first. */
export async function listRunsOfNotebook(
  notebook: string,
  signal?: AbortSignal
): Promise<IRunInfo[]> {
  const quoted =
    '"' + notebook.replace(/\\/g, '\\\\').replace(/"/g, '\\"') + '"';
  const page = await requestAPI<{ runs: IRunInfo[] }>(
    'runs' +
      q({ filter: `notebook = ${quoted}`, sort: '-created_at', limit: 200 }),
    { signal }
  );
  return page.runs;
}

const templates = new Map<string, Promise<ITemplateInfo>>();

/**
 * A template run with its typed parameters and outputs (`GET /runs/{id}` and
 * `GET /runs/{id}/params`), fetched once per page.
 */
export function getTemplate(id: string): Promise<ITemplateInfo> {
  let found = templates.get(id);
  if (!found) {
    found = fetchTemplate(id);
    templates.set(id, found);
    found.catch(() => templates.delete(id));
  }
  return found;
}

/** Forget a cached template (a run that changed, e.g. got new outputs). */
export function forgetTemplate(id: string): void {
  templates.delete(id);
}

async function fetchTemplate(id: string): Promise<ITemplateInfo> {
  const path = 'runs/' + encodeURIComponent(id);
  const [run, params] = await Promise.all([
    requestAPI<IRunInfo>(path),
    requestAPI<{ params: IRunParam[] }>(path + '/params')
  ]);
  return {
    id: run.id,
    name: run.name,
    status: run.status,
    notebook: run.notebook ?? null,
    snapshot: run.snapshot ?? null,
    params: params.params ?? [],
    outputs: run.outputs ?? [],
    gpus: Array.isArray(run.gpu?.devices) ? run.gpu!.devices!.length : 0
  };
}

/** `GET /executors`: where a pipeline can run. */
export async function listExecutors(): Promise<{
  executors: IExecutorInfo[];
  default: string | null;
}> {
  const found = await requestAPI<{
    executors?: IExecutorInfo[];
    default?: string;
  }>('executors');
  return { executors: found.executors ?? [], default: found.default ?? null };
}

/**
 * `POST /pipelines/validate`: the server's findings about a spec (not yet saved). `path` (the
 * file) lets the server resolve notebook paths next to it; when the file on disk cannot be read
 * as a pipeline the spec is validated alone.
 */
export async function validatePipeline(
  spec: IPipelineSpec,
  path: string | null,
  signal?: AbortSignal
): Promise<IValidationIssue[]> {
  const post = (body: object) =>
    requestAPI<{ issues: IValidationIssue[] }>('pipelines/validate', {
      method: 'POST',
      body: JSON.stringify(body),
      headers: JSON_HEADERS,
      signal
    });
  let found: { issues: IValidationIssue[] };
  try {
    found = await post(path ? { spec, path } : { spec });
  } catch (error) {
    if (!path || !(error instanceof ApiError) || error.status !== 400) {
      throw error;
    }
    found = await post({ spec });
  }
  return found.issues ?? [];
}

/** `POST /pipelines/runs`: run the saved file (validated first); the pipeline run's id. */
export function startPipelineRun(
  request: IStartPipelineRun
): Promise<{ id: string }> {
  return requestAPI<{ id: string }>('pipelines/runs', {
    method: 'POST',
    body: JSON.stringify(request),
    headers: JSON_HEADERS
  });
}

/** `GET /pipelines/runs?path=`: the runs of one pipeline file, newest first. */
export async function listPipelineRuns(
  path: string,
  signal?: AbortSignal
): Promise<IPipelineRunSummary[]> {
  const found = await requestAPI<{ runs: IPipelineRunSummary[] }>(
    'pipelines/runs' + q({ path }),
    { signal }
  );
  return found.runs ?? [];
}

/** `GET /pipelines/runs/{id}`: the spec it ran and each stage's state. */
export function getPipelineRun(
  id: string,
  signal?: AbortSignal
): Promise<IPipelineRunDetail> {
  return requestAPI<IPipelineRunDetail>(
    'pipelines/runs/' + encodeURIComponent(id),
    { signal }
  );
}

/** `POST /pipelines/runs/{id}/cancel`. */
export function cancelPipelineRun(id: string): Promise<unknown> {
  return requestAPI('pipelines/runs/' + encodeURIComponent(id) + '/cancel', {
    method: 'POST'
  });
}

let feed: EventFeed | null = null;
const listeners = new Set<(events: IRunEvent[]) => void>();

/** Listen to the live event feed (shared; it runs while anybody listens). */
export function subscribeEvents(
  listener: (events: IRunEvent[]) => void
): IDisposable {
  listeners.add(listener);
  if (!feed) {
    feed = new EventFeed();
    feed.received.connect((_, events) => {
      for (const l of [...listeners]) {
        l(events);
      }
    });
  }
  feed.start();
  let disposed = false;
  return {
    get isDisposed() {
      return disposed;
    },
    dispose() {
      if (disposed) {
        return;
      }
      disposed = true;
      listeners.delete(listener);
      if (!listeners.size && feed) {
        feed.stop();
      }
    }
  };
}

export type { IRunEvent };
