/** The sweep routes: list, detail with trials, start from a template run, cancel. */
import { JSON_HEADERS, query, requestAPI } from './client';
import { IStartSweepRequest, ISweep } from './types';

function sweepPath(id: string, ...parts: string[]): string {
  return ['sweeps', encodeURIComponent(id), ...parts].join('/');
}

/** `GET /sweeps`: the newest sweeps, each with its trials counted by status. */
export async function listSweeps(
  limit = 50,
  signal?: AbortSignal
): Promise<ISweep[]> {
  return (
    await requestAPI<{ sweeps: ISweep[] }>('sweeps' + query({ limit }), {
      signal
    })
  ).sweeps;
}

/** `GET /sweeps/{id}`: the sweep, its counts and every trial. */
export function getSweep(id: string, signal?: AbortSignal): Promise<ISweep> {
  return requestAPI<ISweep>(sweepPath(id), { signal });
}

/** `POST /sweeps`: check and start a sweep; returns its id (a 400 says what is wrong). */
export function startSweep(
  request: IStartSweepRequest
): Promise<{ id: string }> {
  return requestAPI('sweeps', {
    method: 'POST',
    body: JSON.stringify(request),
    headers: JSON_HEADERS
  });
}

/** `POST /sweeps/{id}/cancel`: stop asking for trials and cancel the running ones. */
export function cancelSweep(
  id: string
): Promise<{ id: string; status: string }> {
  return requestAPI(sweepPath(id, 'cancel'), { method: 'POST' });
}
