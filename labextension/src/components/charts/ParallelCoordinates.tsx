/**
 * Parallel coordinates (ECharts): one axis per dimension, one line per row. Drag along an axis to
 * brush it: the lines inside every brushed range stay bright, the others fade, and `onBrush` gets
 * the keys of the rows inside (null when no axis is brushed). The one implementation behind the
 * sweep view (parameters -> objective per trial) and the compare view (parameters -> a metric per
 * run).
 */
import * as React from 'react';

import {
  axisStyle,
  baseTextStyle,
  echarts,
  EChartElement,
  EChartsOption,
  useEChart
} from './echarts';
import { IChartTheme, useChartTheme } from './theme';

export interface IParallelAxis {
  name: string;
  /** Category axis (labels), log axis (positive numbers) or value axis. */
  axis: 'category' | 'log' | 'value';
  /** The labels of a category axis, in axis order. */
  categories?: string[];
  /** The ECharts axis id (default: the index). */
  id?: string;
}

export interface IParallelRow<K> {
  key: K;
  /** One value per axis: a number, a category label, or null (no value: the line breaks). */
  values: readonly (number | string | null)[];
}

export interface IParallelProps<K> {
  axes: readonly IParallelAxis[];
  /** Give a new array when the rows or their colours change (the chart redraws on it). */
  rows: readonly IParallelRow<K>[];
  /** Colour-by: a row's line colour in the current theme. */
  color: (theme: IChartTheme, row: IParallelRow<K>, index: number) => string;
  onBrush: (keys: K[] | null) => void;
  /** Whether the caller keeps a brush: false clears the chart's brush (a "show all" link). */
  brushed?: boolean;
  /** Classes of the chart's box, beside `jp-mlp-Parallel`. */
  className?: string;
  height?: number;
}

/** Where the axes lie in the box (px): the UI tests brush at these positions. */
export const PARALLEL_MARGIN = { left: 48, right: 72, top: 40, bottom: 28 };
export const PARALLEL_HEIGHT = 260;

interface IParallelChartModel {
  getSeriesByIndex(i: number): {
    getRawIndicesByActiveState(state: string): number[];
  } | null;
  getComponent(
    type: string,
    index: number
  ): { activeIntervals?: number[][] } | null;
}

function chartModel(chart: echarts.ECharts): IParallelChartModel {
  return (chart as unknown as { getModel(): IParallelChartModel }).getModel();
}

/** Brush `intervals` (per axis; [] clears an axis) on the chart. */
function applyIntervals(chart: echarts.ECharts, intervals: number[][][]): void {
  intervals.forEach((iv, i) =>
    chart.dispatchAction({
      type: 'axisAreaSelect',
      parallelAxisIndex: i,
      intervals: iv
    })
  );
}

export function ParallelCoordinates<K>(props: IParallelProps<K>): JSX.Element {
  const { axes, rows } = props;
  const height = props.height ?? PARALLEL_HEIGHT;
  const theme = useChartTheme();
  const [active, setActive] = React.useState<number | null>(null);
  const rowsRef = React.useRef(rows);
  rowsRef.current = rows;
  const axesRef = React.useRef(axes);
  axesRef.current = axes;
  const brushRef = React.useRef(props.onBrush);
  brushRef.current = props.onBrush;
  const colorRef = React.useRef(props.color);
  colorRef.current = props.color;
  /** The brushed ranges per axis, to brush a new instance (theme change) the same way. */
  const intervalsRef = React.useRef<number[][][]>([]);
  const many = rows.length > 60;
  const option = React.useMemo<EChartsOption>(() => {
    const style = axisStyle(theme);
    return {
      animation: false,
      textStyle: baseTextStyle(theme),
      tooltip: { show: false },
      parallel: {
        ...PARALLEL_MARGIN,
        parallelAxisDefault: {
          ...style,
          nameLocation: 'end',
          nameGap: 14,
          areaSelectStyle: {
            width: 24,
            color: theme.palette[0],
            borderColor: theme.palette[0],
            opacity: 0.3
          }
        }
      },
      parallelAxis: axes.map((a, i) => ({
        dim: i,
        id: a.id ?? `axis-${i}`,
        name: a.name,
        type: a.axis,
        data: a.axis === 'category' ? a.categories : undefined,
        scale: a.axis === 'value'
      })),
      series: [
        {
          type: 'parallel',
          smooth: false,
          inactiveOpacity: many ? 0.05 : 0.08,
          activeOpacity: 1,
          lineStyle: { width: many ? 1.25 : 2, opacity: many ? 0.6 : 0.75 },
          data: rows.map((row, i) => ({
            value: [...row.values],
            lineStyle: { color: colorRef.current(theme, row, i) }
          }))
        }
      ]
    };
  }, [axes, rows, theme.key]);
  const [boxRef] = useEChart(
    option,
    theme.key,
    height,
    chart => {
      chart.on('axisareaselected', () => {
        const model = chartModel(chart);
        const series = model.getSeriesByIndex(0);
        if (!series) {
          return;
        }
        intervalsRef.current = axesRef.current.map(
          (_, i) => model.getComponent('parallelAxis', i)?.activeIntervals ?? []
        );
        const current = rowsRef.current;
        const normal = series.getRawIndicesByActiveState('normal');
        if (normal.length === current.length) {
          setActive(null);
          brushRef.current(null); // no brush on any axis
          return;
        }
        const inside = series.getRawIndicesByActiveState('active');
        setActive(inside.length);
        brushRef.current(inside.map(i => current[i].key));
      });
    },
    ['parallelAxis', 'series']
  );
  const chartOf = () => {
    const chart = (boxRef.current as EChartElement | null)?.mlpChart;
    return chart && !chart.isDisposed() ? chart : null;
  };
  // Other axes: the old brush means nothing on them.
  const axesKey = JSON.stringify(axes.map(a => [a.id, a.name, a.axis]));
  const firstAxes = React.useRef(true);
  React.useEffect(() => {
    if (firstAxes.current) {
      firstAxes.current = false;
      return;
    }
    intervalsRef.current = [];
    setActive(null);
    brushRef.current(null);
  }, [axesKey]);
  // After each new option (new rows, a new instance on a theme change), brush as before: the
  // rows inside are told again (new rows may have come into the brush).
  React.useEffect(() => {
    const chart = chartOf();
    if (chart && intervalsRef.current.some(iv => iv.length)) {
      applyIntervals(chart, intervalsRef.current);
    }
  }, [option, theme.key]);
  // The caller dropped its brush ("show all"): clear the chart's too.
  const brushed = props.brushed;
  React.useEffect(() => {
    const chart = chartOf();
    if (
      brushed === false &&
      chart &&
      intervalsRef.current.some(iv => iv.length)
    ) {
      const cleared = axesRef.current.map(() => []);
      intervalsRef.current = [];
      setActive(null);
      applyIntervals(chart, cleared);
    }
  }, [brushed]);
  return (
    <div
      ref={boxRef}
      className={`jp-mlp-Parallel ${props.className ?? ''}`}
      style={{ height }}
      data-lines={rows.length}
      data-axes={axes.length}
      data-active={active ?? rows.length}
    />
  );
}
