/** `GET /executors`: where reruns and pipelines can run, with their load. */
import { requestAPI } from './client';
import { IExecutor, IExecutors } from './types';

/**
 * `GET /executors`, each executor marked `available` (with the `reason` when not): the server's
 * own flag where it sends one; else a Dask executor without a configured scheduler address
 * cannot take jobs (one that is not connected now can: its jobs wait, and `reason` says why).
 */
export async function getExecutors(signal?: AbortSignal): Promise<IExecutors> {
  const found = await requestAPI<Partial<IExecutors>>('executors', { signal });
  const executors = (found.executors ?? []).map(availability);
  const usable = executors.filter(e => e.available);
  const wanted = found.default ?? null;
  const fallback = usable[0]?.name ?? executors[0]?.name ?? null;
  return {
    executors,
    default: executors.some(e => e.name === wanted && e.available)
      ? wanted
      : fallback
  };
}

function availability(executor: IExecutor): IExecutor {
  if (typeof executor.available === 'boolean') {
    return executor;
  }
  if ('scheduler' in executor && !executor.scheduler) {
    return {
      ...executor,
      available: false,
      reason:
        "no Dask scheduler is configured (set c.MlpApp.dask_scheduler in the Jupyter server's configuration, then restart the server)"
    };
  }
  // Configured but not connected now: jobs wait in its queue; the form shows why.
  return { ...executor, available: true, reason: executor.error ?? null };
}
