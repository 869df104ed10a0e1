/**
 * Typed client for the jupyter-mlp server routes: the only module that talks to the server.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** A metric value as the server reports it. */
export type MetricValue = number | string | null;

/** One tracked run, as listed by `GET /mlp/api/runs`. */
export interface IRun {
  id: string;
  name: string;
  project: string;
  status: string;
  /** Seconds since the epoch. */
  started_at: number | null;
  ended_at: number | null;
  metrics: Record<string, MetricValue>;
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
  limit?: number;
}

/**
 * Call a route under `<base_url>/mlp/api/` and return its decoded JSON body.
 *
 * Throws `ServerConnection.NetworkError` when the server cannot be reached and
 * `ServerConnection.ResponseError` (with the server's message when it sent one) on an error status.
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
    throw new ServerConnection.NetworkError(error as TypeError);
  }
  const text = await response.text();
  if (!response.ok) {
    throw new ServerConnection.ResponseError(response, serverMessage(text));
  }
  return (text ? JSON.parse(text) : undefined) as T;
}

/** List runs, optionally limited to a project and a filter expression. */
export function listRuns(params: IListRunsParams = {}): Promise<IRunsPage> {
  const query: Record<string, string | number> = {};
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== '') {
      query[key] = value;
    }
  }
  return requestAPI<IRunsPage>('runs' + URLExt.objectToQueryString(query));
}

/** The `message` of a Jupyter server error body, if the body is JSON and has one. */
function serverMessage(text: string): string | undefined {
  try {
    const { message } = JSON.parse(text) as { message?: unknown };
    return typeof message === 'string' && message ? message : undefined;
  } catch {
    return undefined;
  }
}
