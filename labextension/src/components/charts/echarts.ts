/**
 * ECharts as the sweep view and the compare view use it: the parts registered once, the text and
 * axis styles from the JupyterLab theme (canvas drawings cannot read CSS variables), and a hook
 * that keeps one instance on a div, sized to it and rebuilt when the theme changes.
 */
import { ParallelChart } from 'echarts/charts';
import {
  GridComponent,
  LegendComponent,
  ParallelComponent,
  TooltipComponent
} from 'echarts/components';
import * as echarts from 'echarts/core';
import { CanvasRenderer } from 'echarts/renderers';
import * as React from 'react';

import { useSize } from '../hooks';
import { IChartTheme } from './theme';

echarts.use([
  ParallelChart,
  ParallelComponent,
  GridComponent,
  LegendComponent,
  TooltipComponent,
  CanvasRenderer
]);

export { echarts };
export type EChartsOption = echarts.EChartsCoreOption;

/** The element an instance draws on carries it (for UI tests and the console). */
export type EChartElement = HTMLElement & { mlpChart?: echarts.ECharts };

export function baseTextStyle(theme: IChartTheme): {
  color: string;
  fontFamily: string;
  fontSize: number;
} {
  const [size, ...family] = theme.font.split(' ');
  return {
    color: theme.text,
    fontFamily: family.join(' '),
    fontSize: parseInt(size, 10) || 11
  };
}

export function axisStyle(theme: IChartTheme) {
  return {
    nameTextStyle: { color: theme.text },
    axisLine: { lineStyle: { color: theme.text } },
    axisTick: { lineStyle: { color: theme.text } },
    axisLabel: { color: theme.text },
    splitLine: { lineStyle: { color: theme.grid } }
  };
}

/**
 * An ECharts instance on a div, `height` px high and as wide as the div; disposed on unmount
 * and on theme change (then made again with the new colours).
 */
export function useEChart(
  option: EChartsOption,
  themeKey: string,
  height: number,
  onInit?: (chart: echarts.ECharts) => void,
  /** Component types an option replaces rather than merges into (e.g. axes that come and go). */
  replaceMerge?: string[]
): [React.RefObject<HTMLDivElement>, number] {
  const [boxRef, size] = useSize<HTMLDivElement>();
  const chartRef = React.useRef<echarts.ECharts | null>(null);
  const width = Math.floor(size.width);
  React.useEffect(() => {
    const node = boxRef.current;
    if (!node || width === 0) {
      return;
    }
    // The width measured, not the div's at this instant: made again on a theme change, while
    // the page restyles, the div can read 0 wide and ECharts then draws 100 px wide for good
    // (the resize below runs only when the measured width changes).
    const chart = echarts.init(node, null, {
      renderer: 'canvas',
      width,
      height
    });
    chartRef.current = chart;
    (node as EChartElement).mlpChart = chart;
    onInit?.(chart);
    return () => {
      chart.dispose();
      chartRef.current = null;
    };
  }, [themeKey, width > 0]);
  React.useEffect(() => {
    chartRef.current?.setOption(option, replaceMerge ? { replaceMerge } : {});
  }, [option, themeKey, width > 0]);
  React.useEffect(() => {
    chartRef.current?.resize({ width, height });
  }, [width, height]);
  return [boxRef, width];
}
