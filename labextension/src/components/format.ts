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

/**
 * How long a running interactive run's kernel has been idle before it reads "idle": the same as
 * the server's and the CLI's, `IDLE_AFTER_S` in jupyter_mlp/store/runs.py (5 minutes).
 */
export const IDLE_AFTER_S = 300;

/** An interactive run: its kernel stays alive between cells (and the run `running`). */
export function isInteractive(run: { kind?: string | null }): boolean {
  return !run.kind || run.kind === 'interactive';
}

/**
 * How long a run took, or has been running. For an interactive run the time spent in cells
 * (`busy_s`, when the server reports it): its kernel may idle for hours between cells.
 */
export function runDuration(
  run: {
    status: string;
    kind?: string | null;
    started_at: number | null;
    duration?: number | null;
    busy_s?: number | null;
  },
  now = Date.now() / 1000
): number | null {
  if (isInteractive(run) && typeof run.busy_s === 'number') {
    return run.busy_s;
  }
  if (run.status === 'running' && run.started_at) {
    return Math.max(run.duration ?? 0, now - run.started_at);
  }
  return run.duration ?? null;
}

/**
 * Seconds a running interactive run's kernel has been idle (no cell, metric or output since
 * `last_activity_at`), or null when it is working or not an idle-able run.
 */
export function idleSeconds(
  run: {
    status: string;
    kind?: string | null;
    started_at: number | null;
    last_activity_at?: number | null;
  },
  now = Date.now() / 1000
): number | null {
  if (run.status !== 'running' || !isInteractive(run)) {
    return null;
  }
  const last = run.last_activity_at ?? run.started_at;
  if (!last) {
    return null;
  }
  const idle = now - last;
  return idle >= IDLE_AFTER_S ? idle : null;
}

export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) {
    return '';
  }
  if (seconds < 1) {
    return `${Math.round(seconds * 1000)} ms`;
  }
  if (seconds < 10) {
    return `${seconds.toFixed(1)} s`;
  }
  // Round once, then split: 119.6 s is "2m 0s", never "1m 60s".
  const total = Math.round(seconds);
  if (total < 60) {
    return `${total} s`;
  }
  const m = Math.floor(total / 60);
  if (m < 60) {
    return `${m}m ${total % 60}s`;
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
