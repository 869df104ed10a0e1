/** Display helpers: numbers, durations, times and sizes as short text. */
import { IRun, MetricValue } from '../api';
import { metricNumber } from '../model/sort';

export function formatMetric(value: MetricValue | undefined): string {
  const n = metricNumber(value);
  if (n === null) {
    return '';
  }
  if (!Number.isFinite(n)) {
    return String(n);
  }
  if (Number.isInteger(n) && Math.abs(n) < 1e6) {
    return String(n);
  }
  const abs = Math.abs(n);
  if (abs !== 0 && (abs < 1e-3 || abs >= 1e6)) {
    return n.toExponential(2);
  }
  return n.toPrecision(4).replace(/\.?0+$/, '');
}

/** How long a run took, or has been running (its duration stops at the last heartbeat). */
export function runDuration(run: {
  status: string;
  started_at: number | null;
  duration?: number | null;
}): number | null {
  if (run.status === 'running' && run.started_at) {
    return Math.max(run.duration ?? 0, Date.now() / 1000 - run.started_at);
  }
  return run.duration ?? null;
}

export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) {
    return '';
  }
  if (seconds < 1) {
    return `${Math.round(seconds * 1000)} ms`;
  }
  if (seconds < 60) {
    return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  }
  const m = Math.floor(seconds / 60);
  if (m < 60) {
    return `${m}m ${Math.round(seconds % 60)}s`;
  }
  const h = Math.floor(m / 60);
  return h < 48 ? `${h}h ${m % 60}m` : `${Math.floor(h / 24)}d ${h % 24}h`;
}

/** "5m", "3h", "2d": how long ago a time (seconds since the epoch) was. */
export function formatAgo(
  time: number | null | undefined,
  now = Date.now() / 1000
): string {
  if (!time) {
    return '';
  }
  const s = Math.max(0, now - time);
  if (s < 60) {
    return `${Math.floor(s)}s`;
  }
  if (s < 3600) {
    return `${Math.floor(s / 60)}m`;
  }
  if (s < 86400 * 2) {
    return `${Math.floor(s / 3600)}h`;
  }
  return `${Math.floor(s / 86400)}d`;
}

export function formatTime(time: number | null | undefined): string {
  return time ? new Date(time * 1000).toLocaleString() : '';
}

export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined) {
    return '';
  }
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit ? value.toFixed(1) : value} ${units[unit]}`;
}

/** A JSON value as one line of text (strings without quotes). */
export function formatValue(value: unknown): string {
  if (typeof value === 'string') {
    return value;
  }
  return JSON.stringify(value) ?? String(value);
}

/** The highest GPU memory a run used on any GPU, when its row carries the GPU record. */
export function gpuPeak(run: IRun): number | null {
  const peaks = Object.values(run.gpu?.run ?? {})
    .map(f => f.mem_peak)
    .filter((v): v is number => typeof v === 'number');
  return peaks.length ? Math.max(...peaks) : null;
}
