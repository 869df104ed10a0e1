/** The pipeline routes: validate, run, the runs of a file, one run's detail, cancel. */
import type { IPipelineSpec } from '../pipeline/spec';
import { ApiError, JSON_HEADERS, query, requestAPI } from './client';
import {
  IPipelineRunDetail,
  IPipelineRunSummary,
  IStartPipelineRun,
  IValidationIssue
} from './types';

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

/**
 * `GET /pipelines/runs?path=`: the runs of one pipeline file, newest first. `path` is the file
 * relative to the Jupyter root, as the editor knows it; the server resolves it to the same name
 * the command line stores.
 */
export async function listPipelineRuns(
  path: string,
  signal?: AbortSignal
): Promise<IPipelineRunSummary[]> {
  const found = await requestAPI<{ runs: IPipelineRunSummary[] }>(
    'pipelines/runs' + query({ path }),
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
