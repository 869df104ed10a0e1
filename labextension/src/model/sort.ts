/**
 * The listing's order on the client, the same as the server's (jupyter_mlp/store/runs.py): runs
 * with a sort value in value order (ties by id, same direction), then runs without one by id.
 * Used to place a run that changed live without reloading the list.
 */
import { IRun, MetricValue } from '../api';

export const DEFAULT_SORT = '-created_at';

export interface ISortSpec {
  field: string;
  desc: boolean;
}

export function parseSort(sort: string): ISortSpec {
  const spec = (sort || DEFAULT_SORT).trim();
  return { field: spec.replace(/^[+-]/, ''), desc: spec.startsWith('-') };
}

export function formatSort(spec: ISortSpec): string {
  return (spec.desc ? '-' : '') + spec.field;
}

/** A metric as a number: the server's 'NaN' / 'Infinity' strings included; null if absent. */
export function metricNumber(value: MetricValue | undefined): number | null {
  if (value === null || value === undefined) {
    return null;
  }
  if (typeof value === 'number') {
    return value;
  }
  const n = Number(value);
  return Number.isNaN(n) && value !== 'NaN' ? null : n;
}

function duration(run: IRun): number | null {
  if (typeof run.duration === 'number') {
    return run.duration;
  }
  const end = run.ended_at ?? run.heartbeat_at;
  return run.started_at && end ? end - run.started_at : null;
}

/** The value a run is sorted by, or null when it has none (it then sorts after the rest). */
export function sortValue(run: IRun, field: string): number | string | null {
  const dot = field.indexOf('.');
  if (dot > 0) {
    const head = field.slice(0, dot);
    const key = field.slice(dot + 1);
    if (head === 'metrics') {
      const n = metricNumber(run.metrics?.[key]);
      // SQLite keeps NaN as NULL in the latest-metrics table.
      return n === null || Number.isNaN(n) ? null : n;
    }
    if (head === 'params') {
      const v = run.params?.[key];
      if (typeof v === 'boolean') {
        return v ? 1 : 0;
      }
      return typeof v === 'number' ? v : null;
    }
    return null;
  }
  if (field === 'duration') {
    return duration(run);
  }
  if (field === 'pinned') {
    return run.pinned ? 1 : 0;
  }
  if (field === 'tags') {
    return run.tags ? JSON.stringify(run.tags) : null;
  }
  const v = (run as unknown as Record<string, unknown>)[field];
  return typeof v === 'number' || typeof v === 'string' ? v : null;
}

/** A comparator giving the server's order for `sort`. */
export function comparator(sort: string): (a: IRun, b: IRun) => number {
  const { field, desc } = parseSort(sort);
  const dir = desc ? -1 : 1;
  return (a, b) => {
    const va = sortValue(a, field);
    const vb = sortValue(b, field);
    if (va === null && vb !== null) {
      return 1;
    }
    if (vb === null && va !== null) {
      return -1;
    }
    if (va !== null && vb !== null && va !== vb) {
      return (va < vb ? -1 : 1) * dir;
    }
    return (a.id < b.id ? -1 : a.id > b.id ? 1 : 0) * dir;
  };
}
