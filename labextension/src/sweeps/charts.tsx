/**
 * The sweep's charts: the objective over trials (uPlot, as the run detail's charts: points per
 * trial coloured by status and the best so far as a step line), the parallel coordinates of the
 * searched parameters to the objective (the shared ParallelCoordinates, as Compare draws them;
 * brushing an axis picks trials) and one parameter against the objective (ECharts scatter).
 * Colours come from the JupyterLab theme and the charts are rebuilt when it changes.
 */
import { TranslationBundle } from '@jupyterlab/translation';
import { ScatterChart } from 'echarts/charts';
import * as React from 'react';
import 'uplot/dist/uPlot.min.css';
import uPlot from 'uplot';

import { ISweepTrial } from '../api/types';
import {
  axisStyle,
  baseTextStyle,
  echarts,
  EChartsOption,
  useEChart
} from '../components/charts/echarts';
import {
  IParallelAxis,
  IParallelRow,
  ParallelCoordinates
} from '../components/charts/ParallelCoordinates';
import { IChartTheme, useChartTheme } from '../components/charts/theme';
import { useSize } from '../components/hooks';
import { categoryLabel, ISearched } from './SweepModel';

echarts.use([ScatterChart]);

export const CHART_HEIGHT = 260;
export const STATUSES = [
  'finished',
  'pruned',
  'running',
  'failed',
  'cancelled'
] as const;

/** A trial status's colour in the theme (as the status text is coloured in the tables). */
export function statusColor(theme: IChartTheme, status: string): string {
  const [brand, warn, success, error] = theme.palette;
  switch (status) {
    case 'finished':
      return success;
    case 'pruned':
    case 'cancelled':
      return warn;
    case 'failed':
      return error;
    default:
      return brand;
  }
}

/** The value a trial has on a parameter's axis (a label on category axes). */
function axisValue(p: ISearched, trial: ISweepTrial): number | string | null {
  const v = trial.params?.[p.name];
  if (v === undefined) {
    return null;
  }
  if (p.axis === 'category') {
    return categoryLabel(v);
  }
  return typeof v === 'number' ? v : null;
}

function Figure({
  title,
  className,
  note,
  children
}: {
  title: string;
  className: string;
  note?: React.ReactNode;
  children: React.ReactNode;
}): JSX.Element {
  return (
    <figure className={`jp-mlp-SweepChart ${className}`}>
      <figcaption className="jp-mlp-Chart-title">
        <span className="jp-mlp-Chart-name">{title}</span>
        {note}
      </figcaption>
      {children}
    </figure>
  );
}

export interface ISweepChartProps {
  trials: readonly ISweepTrial[];
  searched: ISearched[];
  objective: string;
  maximize: boolean;
  trans: TranslationBundle;
}

/** Parallel coordinates: an axis per searched parameter, then the objective; lines by status. */
export function ParallelPlot(
  props: ISweepChartProps & {
    onBrush: (numbers: number[] | null) => void;
    brushed: ReadonlySet<number> | null;
  }
): JSX.Element {
  const { trials, searched, objective, trans } = props;
  const axes = React.useMemo<IParallelAxis[]>(
    () => [
      ...searched.map(p => ({
        id: `param-${p.name}`,
        name: p.name,
        axis: p.axis,
        categories: p.axis === 'category' ? p.categories : undefined
      })),
      { id: 'objective', name: objective, axis: 'value' as const }
    ],
    [searched, objective]
  );
  const rows = React.useMemo<IParallelRow<number>[]>(
    () =>
      trials
        .filter(t => t.value !== null)
        .map(t => ({
          key: t.number,
          values: [...searched.map(p => axisValue(p, t)), t.value]
        })),
    [trials, searched]
  );
  const statusOf = React.useMemo(
    () => new Map(trials.map(t => [t.number, t.status])),
    [trials]
  );
  return (
    <Figure
      title={trans.__('Parameters → objective')}
      className="jp-mlp-SweepParallel"
      note={
        <span className="jp-mlp-Chart-note">
          {props.brushed
            ? trans.__('%1 trials in the brush', props.brushed.size)
            : trans.__('drag along an axis to pick trials')}
        </span>
      }
    >
      <ParallelCoordinates
        axes={axes}
        rows={rows}
        color={(theme, row) => statusColor(theme, statusOf.get(row.key) ?? '')}
        brushed={props.brushed !== null}
        onBrush={props.onBrush}
        className="jp-mlp-SweepChart-box"
        height={CHART_HEIGHT}
      />
    </Figure>
  );
}

/** One parameter (picked in a select) against the objective. */
export function ScatterPlot(props: ISweepChartProps): JSX.Element {
  const { trials, searched, objective, trans } = props;
  const theme = useChartTheme();
  const [picked, setPicked] = React.useState<string>(searched[0]?.name ?? '');
  const param = searched.find(p => p.name === picked) ?? searched[0] ?? null;
  const option = React.useMemo<EChartsOption>(() => {
    const style = axisStyle(theme);
    const byStatus = STATUSES.map(status => ({
      status,
      points: trials
        .filter(t => t.status === status && t.value !== null && param)
        .map(t => ({
          value: [axisValue(param!, t), t.value],
          name: `#${t.number}`
        }))
    })).filter(s => s.points.length);
    return {
      animation: false,
      textStyle: baseTextStyle(theme),
      grid: { left: 56, right: 20, top: 34, bottom: 40 },
      legend: {
        top: 4,
        right: 8,
        textStyle: { color: theme.text },
        data: byStatus.map(s => s.status)
      },
      tooltip: { trigger: 'item' },
      xAxis: {
        ...style,
        type: param?.axis ?? 'value',
        data: param?.axis === 'category' ? param.categories : undefined,
        scale: param?.axis === 'value',
        name: param?.name ?? '',
        nameLocation: 'middle',
        nameGap: 24
      },
      yAxis: {
        ...style,
        type: 'value',
        scale: true,
        name: objective,
        nameTextStyle: { color: theme.text, align: 'left' }
      },
      series: byStatus.map(s => ({
        type: 'scatter',
        name: s.status,
        symbolSize: 9,
        itemStyle: { color: statusColor(theme, s.status) },
        data: s.points
      }))
    };
  }, [trials, param, objective, theme.key]);
  const [boxRef] = useEChart(option, theme.key, CHART_HEIGHT);
  return (
    <Figure
      title={trans.__('Parameter vs objective')}
      className="jp-mlp-SweepScatter"
      note={
        <select
          className="jp-mod-styled jp-mlp-SweepScatter-param"
          aria-label={trans.__('Parameter')}
          value={param?.name ?? ''}
          onChange={e => setPicked(e.currentTarget.value)}
        >
          {searched.map(p => (
            <option key={p.name} value={p.name}>
              {p.name}
            </option>
          ))}
        </select>
      }
    >
      <div ref={boxRef} className="jp-mlp-SweepChart-box" />
    </Figure>
  );
}

/** The objective per trial (points by status) and the best so far (a step line). */
export function ObjectiveChart(props: ISweepChartProps): JSX.Element {
  const { trials, maximize, trans } = props;
  const theme = useChartTheme();
  const [boxRef, size] = useSize<HTMLDivElement>();
  const plotRef = React.useRef<HTMLDivElement>(null);
  const width = Math.max(0, Math.floor(size.width));
  const statuses = STATUSES.filter(s =>
    trials.some(t => t.status === s && t.value !== null)
  );
  const data = React.useMemo<uPlot.AlignedData>(() => {
    const xs = trials.map(t => t.number);
    const columns = statuses.map(s =>
      trials.map(t => (t.status === s ? t.value : null))
    );
    let best: number | null = null;
    const bestLine = trials.map(t => {
      if (t.status === 'finished' && t.value !== null) {
        if (best === null || (maximize ? t.value > best : t.value < best)) {
          best = t.value;
        }
      }
      return best;
    });
    return [xs, ...columns, bestLine];
  }, [trials, maximize, statuses.join()]);
  const shape = JSON.stringify([statuses, theme.key]);
  React.useEffect(() => {
    const node = plotRef.current;
    if (!node || width === 0) {
      return;
    }
    const axis = {
      stroke: theme.text,
      font: theme.font,
      labelFont: theme.font,
      grid: { stroke: theme.grid, width: 1 },
      ticks: { stroke: theme.grid, width: 1 }
    };
    const options: uPlot.Options = {
      width,
      height: CHART_HEIGHT - 40,
      scales: { x: { time: false }, y: { auto: true } },
      series: [
        { label: trans.__('trial') },
        ...statuses.map(s => {
          const color = statusColor(theme, s);
          return {
            label: s,
            stroke: color,
            fill: color,
            paths: () => null,
            points: { show: true, size: 8, stroke: color, fill: color }
          };
        }),
        {
          label: trans.__('best so far'),
          stroke: theme.text,
          width: 1.5,
          spanGaps: true,
          paths: uPlot.paths.stepped!({ align: 1 }),
          points: { show: false }
        }
      ],
      axes: [
        { ...axis, label: trans.__('trial'), labelSize: 20 },
        { ...axis, size: 56 }
      ],
      cursor: { drag: { x: false, y: false }, points: { show: false } },
      legend: { show: true, live: false }
    };
    const plot = new uPlot(options, data, node);
    return () => plot.destroy();
  }, [shape, width, data]);
  return (
    <Figure
      title={trans.__('Objective over trials')}
      className="jp-mlp-SweepObjective"
    >
      <div ref={boxRef} className="jp-mlp-Chart-box">
        <div ref={plotRef} className="jp-mlp-Chart-plot" />
      </div>
    </Figure>
  );
}
