/**
 * A uPlot line chart as a React component. uPlot draws on a canvas and writes legend labels as
 * text. Drag across the chart to zoom: `onZoom` gets the x range (the model re-fetches it at full
 * resolution); double-click or "Reset zoom" zooms out.
 */
import { TranslationBundle } from '@jupyterlab/translation';
import * as React from 'react';
import 'uplot/dist/uPlot.min.css';
import uPlot from 'uplot';

import { useSize } from '../hooks';
import { IChartTheme, useChartTheme, withAlpha } from './theme';

export interface IChartLine {
  label: string;
  /** Index in the theme palette. */
  color: number;
  /** Scale id for a second y axis ('y' by default). */
  scale?: string;
  /** Draw only as the edge of a band (min / max), thin and faint. */
  faint?: boolean;
  /** false: no row in the legend (a band's edges, or too many lines to list). */
  legend?: boolean;
  /** Draw its points as dots (a series of a single point has no line to draw). */
  points?: boolean;
}

export interface IChartBand {
  /** Indices in `data` (1-based, as uPlot counts series) of the upper and lower line. */
  upper: number;
  lower: number;
  color: number;
}

export interface IChartAxis {
  scale: string;
  label?: string;
  /** Put it on the right. */
  right?: boolean;
  format?: (value: number) => string;
}

export interface IChartProps {
  /** Shown above the chart (text). */
  title: string;
  /** `[x, y1, y2, ...]` with nulls for gaps. */
  data: uPlot.AlignedData;
  lines: IChartLine[];
  bands?: IChartBand[];
  /** x is unix seconds (a time axis) rather than steps. */
  time?: boolean;
  xLabel?: string;
  axes?: IChartAxis[];
  height?: number;
  /** Zooming in (a range) or out (null); without it the chart does not zoom. */
  onZoom?: (range: [number, number] | null) => void;
  zoomed?: boolean;
  loading?: boolean;
  /** Extra text beside the title (e.g. "1,000 of 50,000 points"). */
  note?: string;
  trans: TranslationBundle;
}

function buildOptions(
  props: IChartProps,
  theme: IChartTheme,
  width: number,
  onSelect: (range: [number, number]) => void
): uPlot.Options {
  const color = (i: number) => theme.palette[i % theme.palette.length];
  const axis = (extra: Partial<uPlot.Axis>): uPlot.Axis => ({
    stroke: theme.text,
    font: theme.font,
    labelFont: theme.font,
    grid: { stroke: theme.grid, width: 1 },
    ticks: { stroke: theme.grid, width: 1 },
    ...extra
  });
  const yAxes: IChartAxis[] = props.axes ?? [{ scale: 'y' }];
  const scales: uPlot.Scales = { x: { time: !!props.time } };
  for (const a of yAxes) {
    scales[a.scale] = { auto: true };
  }
  return {
    width,
    height: props.height ?? 200,
    scales,
    series: [
      { label: props.xLabel ?? 'x' },
      ...props.lines.map(line => ({
        label: line.label,
        scale: line.scale ?? 'y',
        stroke: line.faint
          ? withAlpha(color(line.color), 0.35)
          : color(line.color),
        width: line.faint ? 1 : 1.5,
        spanGaps: true,
        points: line.points ? { show: true, size: 6 } : { show: false }
      }))
    ],
    bands: (props.bands ?? []).map(b => ({
      series: [b.upper, b.lower] as [number, number],
      fill: withAlpha(color(b.color), 0.15)
    })),
    axes: [
      props.xLabel ? axis({ label: props.xLabel, labelSize: 20 }) : axis({}),
      ...yAxes.map(a => {
        const extra: Partial<uPlot.Axis> = {
          scale: a.scale,
          side: a.right ? 1 : 3,
          grid: a.right ? { show: false } : { stroke: theme.grid, width: 1 },
          size: 56
        };
        if (a.label) {
          extra.label = a.label;
          extra.labelSize = 20;
        }
        if (a.format) {
          // (uPlot takes a `values: undefined` as "no tick labels": set it only when given)
          extra.values = (_u: uPlot, splits: number[]) =>
            splits.map(v => a.format!(v));
        }
        return axis(extra);
      })
    ],
    cursor: {
      drag: { x: !!props.onZoom, y: false, setScale: false },
      points: { show: false }
    },
    legend: { show: true, live: true },
    hooks: {
      setSelect: [
        (u: uPlot) => {
          if (u.select.width > 4) {
            const from = u.posToVal(u.select.left, 'x');
            const to = u.posToVal(u.select.left + u.select.width, 'x');
            u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
            onSelect([from, to]);
          }
        }
      ]
    }
  };
}

export function Chart(props: IChartProps): JSX.Element {
  const { trans, onZoom } = props;
  const theme = useChartTheme();
  const [boxRef, size] = useSize<HTMLDivElement>();
  const plotRef = React.useRef<HTMLDivElement>(null);
  const uplotRef = React.useRef<uPlot | null>(null);
  const zoomRef = React.useRef(onZoom);
  zoomRef.current = onZoom;
  // Rebuild when what the chart is changes (lines, theme); new data only replaces the data.
  const shape = JSON.stringify([
    props.lines,
    props.bands,
    props.axes?.map(a => [a.scale, a.label, a.right]),
    props.time,
    props.xLabel,
    props.height,
    !!onZoom,
    theme.key
  ]);
  const width = Math.max(0, Math.floor(size.width));

  React.useEffect(() => {
    const node = plotRef.current;
    if (!node || width === 0) {
      return;
    }
    const options = buildOptions(props, theme, width, range =>
      zoomRef.current?.(range)
    );
    const plot = new uPlot(options, props.data, node);
    uplotRef.current = plot;
    // For UI tests and the console: the instance on its element.
    (node as HTMLElement & { mlpChart?: uPlot }).mlpChart = plot;
    const rows = plot.root.querySelectorAll<HTMLElement>('.u-legend .u-series');
    props.lines.forEach((line, i) => {
      if (line.legend === false && rows[i + 1]) {
        rows[i + 1].style.display = 'none';
      }
    });
    const reset = () => zoomRef.current?.(null);
    plot.over.addEventListener('dblclick', reset);
    return () => {
      plot.over.removeEventListener('dblclick', reset);
      plot.destroy();
      uplotRef.current = null;
    };
  }, [shape, width > 0]);

  React.useEffect(() => {
    uplotRef.current?.setData(props.data);
  }, [props.data]);

  React.useEffect(() => {
    const plot = uplotRef.current;
    if (plot && width > 0 && plot.width !== width) {
      plot.setSize({ width, height: props.height ?? 200 });
    }
  }, [width, props.height]);

  const points = props.data[0]?.length ?? 0;
  return (
    <figure
      className="jp-mlp-Chart"
      data-points={points}
      data-text-color={theme.text}
      aria-busy={props.loading ? 'true' : 'false'}
    >
      <figcaption className="jp-mlp-Chart-title">
        <span className="jp-mlp-Chart-name">{props.title}</span>
        {props.note && <span className="jp-mlp-Chart-note">{props.note}</span>}
        {onZoom && props.zoomed && (
          <button
            className="jp-mlp-Link jp-mlp-Chart-reset"
            onClick={() => onZoom(null)}
          >
            {trans.__('Reset zoom')}
          </button>
        )}
      </figcaption>
      <div ref={boxRef} className="jp-mlp-Chart-box">
        <div ref={plotRef} className="jp-mlp-Chart-plot" />
      </div>
    </figure>
  );
}
