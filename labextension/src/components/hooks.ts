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
