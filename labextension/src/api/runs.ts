/** The run routes: listing, detail, records, notebooks, blobs, compare, rerun, cancel. */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { JSON_HEADERS, query, requestAPI, runPath } from './client';
import {
  ICell,
  ICompare,
  ICompareSeries,
  IGpuSeries,
  IListRunsParams,
  IMetricKey,
  IMetricSeries,
  IMetricSeriesParams,
  IOutput,
  IParam,
  IRerunRequest,
  IRun,
  IRunPatch,
  IRunsPage,
  ITemplateInfo,
  NotebookWhich
} from './types';

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

/** Runs in one compare (and one `/compare/metrics` request), as the server allows. */
export const COMPARE_MAX = 200;

/**
 * `GET /compare/metrics?ids=&key=`: one metric's series of several runs in one request (each
 * downsampled to `points`, which the server also caps to 200,000 / runs); runs that never
 * logged the metric are absent from `series`.
 */
export function compareSeries(
  ids: string[],
  key: string,
  params: IMetricSeriesParams = {},
  signal?: AbortSignal
): Promise<ICompareSeries> {
  return requestAPI<ICompareSeries>(
    'compare/metrics' + query({ ids: ids.join(','), key, ...params }),
    { signal }
  );
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

/** A filter-language string literal. */
export function quoteFilter(value: string): string {
  return '"' + value.replace(/\\/g, '\\\\').replace(/"/g, '\\"') + '"';
}

/** `GET /runs?filter=pinned = true`: the runs a pipeline can use as templates. */
export async function listPinnedRuns(signal?: AbortSignal): Promise<IRun[]> {
  return (
    await listRuns(
      { filter: 'pinned = true', sort: '-created_at', limit: 500 },
      signal
    )
  ).runs;
}

/** `GET /runs?filter=notebook = "PATH"`: the runs of one notebook, newest first. */
export async function listRunsOfNotebook(
  notebook: string,
  signal?: AbortSignal
): Promise<IRun[]> {
  return (
    await listRuns(
      {
        filter: `notebook = ${quoteFilter(notebook)}`,
        sort: '-created_at',
        limit: 200
      },
      signal
    )
  ).runs;
}

/** A run as a stage template: `GET /runs/{id}` and its typed `GET /runs/{id}/params`. */
export async function getTemplate(
  id: string,
  signal?: AbortSignal
): Promise<ITemplateInfo> {
  const [run, params] = await Promise.all([
    getRun(id, signal),
    getParams(id, signal)
  ]);
  const devices = run.gpu?.devices;
  return {
    id: run.id,
    name: run.name,
    status: run.status,
    notebook: run.notebook ?? null,
    snapshot: run.snapshot ?? null,
    params: params ?? [],
    outputs: run.outputs ?? [],
    gpus: Array.isArray(devices) ? devices.length : 0
  };
}
