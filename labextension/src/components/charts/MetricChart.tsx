import { TranslationBundle } from '@jupyterlab/translation';
import * as React from 'react';
import uPlot from 'uplot';

import { IGpuSample, IMetricSeries, MetricValue } from '../../api';
import { ISeriesState, StepRange } from '../../model/series';
import { formatMetric } from '../format';
import { Chart, IChartLine } from './Chart';
import { gpuData, isDownsampled, metricData, overlayData } from './series';

/** One run's metric: the value line and, where buckets were merged, a min-max band. */
export function MetricChart(props: {
  name: string;
  state: ISeriesState;
  latest?: MetricValue;
  color?: number;
  onZoom: (range: StepRange) => void;
  trans: TranslationBundle;
}): JSX.Element {
  const { state, trans } = props;
  const series = state.series;
  const color = props.color ?? 0;
  const data = React.useMemo(
    (): uPlot.AlignedData => (series ? metricData(series) : [[], [], [], []]),
    [series]
  );
  const banded = series ? isDownsampled(series) : false;
  const lines: IChartLine[] = [{ label: props.name, color }];
  if (banded) {
    lines.push(
      { label: trans.__('max'), color, faint: true },
      { label: trans.__('min'), color, faint: true }
    );
  }
  const shown = (banded ? data : data.slice(0, 2)) as uPlot.AlignedData;
  let note = '';
  if (series) {
    note =
      series.total > series.points.length
        ? trans.__('%1 of %2 points', series.points.length, series.total)
        : trans._n('%1 point', '%1 points', series.total);
  }
  if (props.latest !== undefined) {
    note = trans.__('latest %1', formatMetric(props.latest)) + ' · ' + note;
  }
  return (
    <Chart
      title={props.name}
      data={shown}
      lines={lines}
      bands={banded ? [{ upper: 2, lower: 3, color }] : []}
      xLabel={trans.__('step')}
      onZoom={props.onZoom}
      zoomed={state.range !== null}
      loading={state.loading}
      note={state.error ? state.error : note}
      trans={trans}
    />
  );
}

/** Lines an overlay lists in its legend at most (more: group them, or read the tables). */
export const OVERLAY_LEGEND_MAX = 20;

/** One metric of several runs, overlaid on one step axis. */
export function OverlayChart(props: {
  name: string;
  runs: { id: string; label: string }[];
  series: Map<string, IMetricSeries>;
  zoomed: boolean;
  loading: boolean;
  onZoom: (range: StepRange) => void;
  trans: TranslationBundle;
}): JSX.Element {
  const present = props.runs
    .map((run, i) => ({ run, i, series: props.series.get(run.id) }))
    .filter(x => x.series !== undefined);
  const data = React.useMemo(
    () => overlayData(present.map(x => x.series!)),
    [props.series]
  );
  const legend = present.length <= OVERLAY_LEGEND_MAX;
  return (
    <Chart
      title={props.name}
      data={data}
      note={
        legend
          ? undefined
          : props.trans.__('%1 runs (no legend): group them', present.length)
      }
      lines={present.map(x => ({
        label: x.run.label,
        color: x.i,
        legend,
        points: x.series!.points.length === 1
      }))}
      xLabel={props.trans.__('step')}
      onZoom={props.onZoom}
      zoomed={props.zoomed}
      loading={props.loading}
      trans={props.trans}
    />
  );
}

/** One GPU's utilisation (%) and memory used (GiB) over time. */
export function GpuChart(props: {
  title: string;
  samples: IGpuSample[];
  trans: TranslationBundle;
}): JSX.Element {
  const { trans } = props;
  const data = React.useMemo(() => gpuData(props.samples), [props.samples]);
  return (
    <Chart
      title={props.title}
      data={data}
      time
      lines={[
        { label: trans.__('utilization %'), color: 0, scale: '%' },
        { label: trans.__('memory GiB'), color: 1, scale: 'GiB' }
      ]}
      axes={[
        { scale: '%', label: '%' },
        { scale: 'GiB', label: 'GiB', right: true }
      ]}
      height={160}
      trans={trans}
    />
  );
}
