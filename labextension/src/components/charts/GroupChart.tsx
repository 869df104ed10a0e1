/**
 * One metric of grouped runs: per group the mean curve (aligned by step) in the group's colour,
 * with its min–max or ±std band shaded, and a legend entry "lr=0.01 (n=5)".
 */
import { TranslationBundle } from '@jupyterlab/translation';
import * as React from 'react';
import uPlot from 'uplot';

import { IMetricSeries } from '../../api';
import { BandMode, groupCurve } from '../../model/groups';
import { CHART_POINTS, StepRange } from '../../model/series';
import { Chart, IChartBand, IChartLine } from './Chart';

export interface IChartGroup {
  key: string;
  label: string;
  color: number;
  /** The series of the group's runs that logged the metric. */
  series: IMetricSeries[];
}

export function GroupChart(props: {
  name: string;
  groups: IChartGroup[];
  band: BandMode;
  zoomed: boolean;
  loading: boolean;
  onZoom: (range: StepRange) => void;
  trans: TranslationBundle;
}): JSX.Element {
  const { groups, band, trans } = props;
  const curves = React.useMemo(
    () =>
      groups
        .map(g => ({
          group: g,
          curve: groupCurve(g.series, band, CHART_POINTS)
        }))
        .filter(x => x.curve.steps.length > 0),
    [groups, band]
  );
  const data = React.useMemo<uPlot.AlignedData>(() => {
    if (!curves.length) {
      return [[]];
    }
    return uPlot.join(
      curves.map(
        ({ curve }) =>
          [
            curve.steps,
            curve.mean,
            curve.upper,
            curve.lower
          ] as uPlot.AlignedData
      )
    );
  }, [curves]);
  const lines: IChartLine[] = [];
  const bands: IChartBand[] = [];
  const edge = band === 'std' ? ['+σ', '−σ'] : ['max', 'min'];
  curves.forEach(({ group, curve }, i) => {
    const color = group.color;
    lines.push(
      {
        label: trans.__('%1 (n=%2)', group.label, curve.runs),
        color,
        points: curve.steps.length === 1
      },
      { label: `${group.label} ${edge[0]}`, color, faint: true, legend: false },
      { label: `${group.label} ${edge[1]}`, color, faint: true, legend: false }
    );
    bands.push({ upper: 3 * i + 2, lower: 3 * i + 3, color });
  });
  return (
    <div
      className="jp-mlp-GroupChart"
      data-metric={props.name}
      data-groups={curves.length}
      data-band={band}
    >
      <Chart
        title={props.name}
        data={data}
        lines={lines}
        bands={bands}
        xLabel={trans.__('step')}
        note={
          band === 'std'
            ? trans.__('mean ± std per group')
            : trans.__('mean, min–max per group')
        }
        onZoom={props.onZoom}
        zoomed={props.zoomed}
        loading={props.loading}
        trans={trans}
      />
    </div>
  );
}
