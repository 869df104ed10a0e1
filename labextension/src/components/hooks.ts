import { Poll } from '@lumino/polling';
import { ISignal } from '@lumino/signaling';
import * as React from 'react';

/** Re-render whenever a model's `changed` signal fires. */
export function useSignal<T>(signal: ISignal<T, void>): void {
  const [, setTick] = React.useState(0);
  React.useEffect(() => {
    const onChange = () => setTick(t => t + 1);
    signal.connect(onChange);
    return () => {
      signal.disconnect(onChange);
    };
  }, [signal]);
}

/** The size of an element, kept current with a ResizeObserver. */
export function useSize<E extends HTMLElement>(): [
  React.RefObject<E>,
  { width: number; height: number }
] {
  const ref = React.useRef<E>(null);
  const [size, setSize] = React.useState({ width: 0, height: 0 });
  React.useLayoutEffect(() => {
    const node = ref.current;
    if (!node) {
      return;
    }
    const measure = () => {
      const width = node.clientWidth;
      const height = node.clientHeight;
      setSize(s =>
        s.width === width && s.height === height ? s : { width, height }
      );
    };
    measure();
    const observer = new ResizeObserver(measure);
    observer.observe(node);
    return () => observer.disconnect();
  }, []);
  return [ref, size];
}

/**
 * The time now (seconds since the epoch), ticking every `intervalMs` (a `Poll`), so that ages
 * and running durations count on screen between data changes. `intervalMs` null: no ticking.
 */
export function useNow(intervalMs: number | null): number {
  const [now, setNow] = React.useState(() => Date.now() / 1000);
  React.useEffect(() => {
    if (intervalMs === null) {
      return;
    }
    const poll = new Poll({
      factory: async () => setNow(Date.now() / 1000),
      frequency: { interval: intervalMs, backoff: false },
      standby: 'when-hidden',
      name: 'jupyter-mlp:clock'
    });
    return () => poll.dispose();
  }, [intervalMs]);
  return now;
}
