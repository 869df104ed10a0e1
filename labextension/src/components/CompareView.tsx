/**
 * Runs side by side: params (differing ones highlighted, or only those), latest metrics, and each
 * metric's curves of every run overlaid. For many runs (a sweep's trials): group by a parameter
 * (per group the mean curve with a min–max or ±std band, and the tables by group: the mean of
 * the latest values, n), and parallel coordinates of the differing params to a metric, whose
 * brush narrows the tables to the runs inside it.
 */
import { TranslationBundle } from '@jupyterlab/translation';
import * as React from 'react';

import { ICompareRun, IMetricSeries, JSONValue } from '../api';
import { CompareModel } from '../model/CompareModel';
import {
  ALL_BUT_SEED,
  BandMode,
  groupLatest,
  groupRuns,
  IRunGroup,
  NO_GROUP,
  offersAllButSeed
} from '../model/groups';
import { metricNumber } from '../model/sort';
import { GroupChart, IChartGroup } from './charts/GroupChart';
import { OverlayChart } from './charts/MetricChart';
import {
  IParallelAxis,
  IParallelRow,
  ParallelCoordinates
} from './charts/ParallelCoordinates';
import { paletteCss } from './charts/theme';
import { formatMetric, formatValue } from './format';
import { useSignal } from './hooks';

export interface ICompareViewProps {
  model: CompareModel;
  trans: TranslationBundle;
  openRun: (id: string) => void;
}

/** Differing params on the parallel plot at most (then the metric's axis). */
const PARALLEL_PARAMS_MAX = 12;

/** A group's label: `lr=0.01`, `lr=0.01, depth=3`. */
export function groupLabel(values: IRunGroup['values']): string {
  return values
    .map(([k, v]) => `${k}=${v === undefined ? '—' : formatValue(v)}`)
    .join(', ');
}

/** A column of the tables: one run, or one group of runs. */
interface IColumn {
  key: string;
  label: string;
  color: number;
  runs: ICompareRun[];
  /** Set for a run's column. */
  run?: ICompareRun;
}

function Swatch({ color }: { color: number }): JSX.Element {
  return (
    <span
      className="jp-mlp-Compare-swatch"
      style={{ background: paletteCss(color) }}
      aria-hidden="true"
    />
  );
}

export function CompareView({
  model,
  trans,
  openRun
}: ICompareViewProps): JSX.Element {
  useSignal(model.changed);
  const data = model.data;
  if (model.error && !data) {
    return (
      <div className="jp-mlp-Compare">
        <p className="jp-mlp-RunDetail-error" role="alert">
          {trans.__('Could not compare the runs: %1', model.error)}
        </p>
      </div>
    );
  }
  if (!data) {
    return (
      <div className="jp-mlp-Compare">
        <p className="jp-mlp-RunsPanel-note">{trans.__('Loading runs…')}</p>
      </div>
    );
  }
  const runs = data.runs;
  const labels = model.labels;
  const labelOf = new Map(labels.map(l => [l.id, l.label]));
  const colorOf = new Map(runs.map((r, i) => [r.id, i]));
  const shownRuns = model.shownRuns;
  const brushed = model.brushed;
  const grouped = model.groupParams.length > 0;
  const columns: IColumn[] = grouped
    ? groupColumns(model, shownRuns)
    : shownRuns.map(r => ({
        key: r.id,
        label: labelOf.get(r.id) ?? r.id,
        color: colorOf.get(r.id) ?? 0,
        runs: [r],
        run: r
      }));
  const shown = model.shownParams;
  const header = (
    <>
      {columns.map(col => (
        <th
          key={col.key}
          scope="col"
          data-color={col.color}
          data-group={col.run ? undefined : col.key}
        >
          {col.run ? (
            <>
              <button
                className="jp-mlp-Link"
                onClick={() => openRun(col.run!.id)}
              >
                {col.label}
              </button>
              <div className="jp-mlp-Muted">
                <code>{col.run.id}</code>{' '}
                <span className="jp-mlp-Status" data-status={col.run.status}>
                  {col.run.status}
                </span>
              </div>
              {col.run.owner && model.identity?.team && (
                <div
                  className="jp-mlp-Compare-owner jp-mlp-Owner"
                  data-mine={
                    model.identity.isMine(col.run.owner) ? 'true' : undefined
                  }
                  title={trans.__('Owner: %1', col.run.owner)}
                >
                  {col.run.owner}
                </div>
              )}
            </>
          ) : (
            <>
              <Swatch color={col.color} />
              <span className="jp-mlp-Compare-groupLabel">{col.label}</span>
              <div className="jp-mlp-Muted">
                {trans._n('%1 run', '%1 runs', col.runs.length)}
              </div>
            </>
          )}
        </th>
      ))}
    </>
  );
  return (
    <div
      className="jp-mlp-Compare"
      data-runs={runs.length}
      data-group-by={model.groupBy}
    >
      <h1 className="jp-mlp-Compare-title">
        {trans._n('Comparing %1 run', 'Comparing %1 runs', runs.length)}
      </h1>
      <GroupBar model={model} trans={trans} />
      {runs.length >= 3 && <ParallelSection model={model} trans={trans} />}
      {brushed && (
        <p className="jp-mlp-Compare-brushNote" role="status">
          {trans.__(
            'The tables show the %1 of %2 runs in the brush.',
            shownRuns.length,
            runs.length
          )}{' '}
          <button
            className="jp-mlp-Link jp-mlp-Compare-clearBrush"
            onClick={() => model.setBrushed(null)}
          >
            {trans.__('show all')}
          </button>
        </p>
      )}
      <section className="jp-mlp-Section">
        <div className="jp-mlp-Section-bar">
          <h2 className="jp-mlp-Section-title">{trans.__('Parameters')}</h2>
          <label className="jp-mlp-Compare-toggle">
            <input
              type="checkbox"
              checked={model.onlyDifferences}
              onChange={e => model.setOnlyDifferences(e.currentTarget.checked)}
            />{' '}
            {trans.__('Only differences')}
          </label>
          <span className="jp-mlp-Muted">
            {trans.__(
              '%1 of %2 differ',
              data.params_differ.length,
              data.params.length
            )}
          </span>
        </div>
        <div className="jp-mlp-Compare-scroll">
          <table className="jp-mlp-Table jp-mlp-Compare-table jp-mlp-Compare-params">
            <thead>
              <tr>
                <th scope="col">
                  {grouped
                    ? trans.__('Parameter / group')
                    : trans.__('Parameter')}
                </th>
                {header}
              </tr>
            </thead>
            <tbody>
              {shown.length === 0 && (
                <tr>
                  <td colSpan={columns.length + 1} className="jp-mlp-Empty">
                    {model.onlyDifferences
                      ? trans.__('All parameters are the same.')
                      : trans.__('No parameters recorded.')}
                  </td>
                </tr>
              )}
              {shown.map(key => (
                <tr
                  key={key}
                  data-param={key}
                  className={model.isDifferent(key) ? 'jp-mlp-mod-differ' : ''}
                >
                  <th scope="row">
                    <code>{key}</code>
                  </th>
                  {columns.map(col => (
                    <td key={col.key} className="jp-mlp-Value">
                      <ParamCell runs={col.runs} param={key} trans={trans} />
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </section>
      <section className="jp-mlp-Section">
        <h2 className="jp-mlp-Section-title">{trans.__('Metrics')}</h2>
        {data.metrics.length === 0 ? (
          <p className="jp-mlp-Empty">{trans.__('No metrics logged.')}</p>
        ) : (
          <>
            <div className="jp-mlp-Compare-scroll">
              <table className="jp-mlp-Table jp-mlp-Compare-table jp-mlp-Compare-metrics">
                <thead>
                  <tr>
                    <th scope="col">
                      {grouped
                        ? trans.__('Metric (mean of latest)')
                        : trans.__('Metric (latest)')}
                    </th>
                    {columns.map(col => (
                      <th
                        key={col.key}
                        scope="col"
                        data-color={col.color}
                        data-group={col.run ? undefined : col.key}
                      >
                        {!col.run && <Swatch color={col.color} />}
                        {col.run
                          ? col.label
                          : trans.__('%1 (n=%2)', col.label, col.runs.length)}
                      </th>
                    ))}
                  </tr>
                </thead>
                <tbody>
                  {data.metrics.map(key => (
                    <tr key={key} data-metric={key}>
                      <th scope="row">
                        <code>{key}</code>
                      </th>
                      {columns.map(col => (
                        <MetricCell
                          key={col.key}
                          col={col}
                          metric={key}
                          trans={trans}
                        />
                      ))}
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
            <MetricCharts model={model} trans={trans} />
          </>
        )}
      </section>
    </div>
  );
}

/** Columns by group, over the runs the tables show (the brush may narrow a group). */
function groupColumns(model: CompareModel, runs: ICompareRun[]): IColumn[] {
  const all = model.groups ?? [];
  const colorOf = new Map(all.map(g => [g.key, g.color]));
  const byId = new Map(runs.map(r => [r.id, r]));
  const groups =
    runs.length === (model.data?.runs.length ?? 0)
      ? all
      : groupRuns(runs, model.groupParams);
  return groups.map(g => ({
    key: g.key,
    label: groupLabel(g.values),
    color: colorOf.get(g.key) ?? g.color,
    runs: g.runIds.map(id => byId.get(id)!).filter(Boolean)
  }));
}

/** A param in a column: the run's value, or the group's one value, or how many it has. */
function ParamCell({
  runs,
  param,
  trans
}: {
  runs: ICompareRun[];
  param: string;
  trans: TranslationBundle;
}): JSX.Element {
  const values = new Map<string, JSONValue | undefined>();
  for (const r of runs) {
    const v = param in r.params ? r.params[param] : undefined;
    values.set(v === undefined ? '\u0000' : JSON.stringify(v), v);
  }
  if (values.size === 1) {
    const [v] = values.values();
    return <>{v === undefined ? '—' : formatValue(v)}</>;
  }
  const shown = [...values.values()].map(v =>
    v === undefined ? '—' : formatValue(v)
  );
  return (
    <span className="jp-mlp-Muted" title={shown.join(', ')}>
      {trans.__('%1 values', values.size)}
    </span>
  );
}

function MetricCell({
  col,
  metric,
  trans
}: {
  col: IColumn;
  metric: string;
  trans: TranslationBundle;
}): JSX.Element {
  if (col.run) {
    return (
      <td className="jp-mod-numeric">
        {formatMetric(col.run.metrics[metric])}
      </td>
    );
  }
  const latest = groupLatest(col.runs, metric);
  return (
    <td
      className="jp-mod-numeric"
      data-n={latest.n}
      title={
        latest.n
          ? trans.__(
              'mean of %1 runs (min %2, max %3)',
              latest.n,
              formatMetric(latest.lo),
              formatMetric(latest.hi)
            )
          : undefined
      }
    >
      {formatMetric(latest.mean)}
      {latest.n > 0 && latest.n < col.runs.length && (
        <span className="jp-mlp-Muted"> (n={latest.n})</span>
      )}
    </td>
  );
}

/** Group by (none, a differing param, every param but the seed) and the band's kind. */
function GroupBar({
  model,
  trans
}: {
  model: CompareModel;
  trans: TranslationBundle;
}): JSX.Element | null {
  const radioName = React.useId();
  const data = model.data!;
  const differ = data.params_differ;
  if (!differ.length || data.runs.length < 3) {
    return null;
  }
  const counts = new Map(
    differ.map(k => [
      k,
      new Set(data.runs.map(r => JSON.stringify(r.params[k] ?? null))).size
    ])
  );
  const grouped = model.groupParams.length > 0;
  const bands: [BandMode, string][] = [
    ['minmax', trans.__('min–max')],
    ['std', trans.__('±std')]
  ];
  return (
    <div className="jp-mlp-Compare-bar">
      <label className="jp-mlp-Compare-field">
        {trans.__('Group by')}
        <select
          className="jp-mod-styled jp-mlp-Compare-groupBy"
          aria-label={trans.__('Group by')}
          value={model.groupBy}
          onChange={e => model.setGroupBy(e.currentTarget.value)}
        >
          <option value={NO_GROUP}>
            {trans.__('none (one line per run)')}
          </option>
          {differ.map(k => (
            <option key={k} value={k}>
              {trans.__('%1 (%2 values)', k, counts.get(k))}
            </option>
          ))}
          {offersAllButSeed(differ) && (
            <option value={ALL_BUT_SEED}>
              {trans.__('every parameter but the seed (seeds averaged)')}
            </option>
          )}
        </select>
      </label>
      <div
        className="jp-mlp-Compare-field"
        role="radiogroup"
        aria-label={trans.__('Band')}
      >
        <span>{trans.__('Band')}</span>
        {bands.map(([value, label]) => (
          <label key={value} className="jp-mlp-Compare-radio">
            <input
              type="radio"
              name={radioName}
              value={value}
              disabled={!grouped}
              checked={model.band === value}
              onChange={() => model.setBand(value)}
            />
            {label}
          </label>
        ))}
      </div>
      {grouped && (
        <span className="jp-mlp-Muted">
          {trans._n(
            '%1 group: a mean curve with its band',
            '%1 groups: a mean curve each, with its band',
            model.groups?.length ?? 0
          )}
        </span>
      )}
    </div>
  );
}

/** Each charted metric: the runs overlaid, or one mean curve and band per group. */
function MetricCharts({
  model,
  trans
}: {
  model: CompareModel;
  trans: TranslationBundle;
}): JSX.Element {
  const groups = model.groups;
  return (
    <div className="jp-mlp-Charts">
      {model.chartedKeys.map(key => {
        const state = model.series(key);
        const zoom = (range: [number, number] | null) => model.zoom(key, range);
        return groups ? (
          <GroupedMetric
            key={key}
            name={key}
            groups={groups}
            band={model.band}
            series={state.series}
            zoomed={state.range !== null}
            loading={state.loading}
            onZoom={zoom}
            trans={trans}
          />
        ) : (
          <OverlayChart
            key={key}
            name={key}
            runs={model.labels}
            series={state.series}
            zoomed={state.range !== null}
            loading={state.loading}
            onZoom={zoom}
            trans={trans}
          />
        );
      })}
    </div>
  );
}

function GroupedMetric(props: {
  name: string;
  groups: IRunGroup[];
  band: BandMode;
  series: Map<string, IMetricSeries>;
  zoomed: boolean;
  loading: boolean;
  onZoom: (range: [number, number] | null) => void;
  trans: TranslationBundle;
}): JSX.Element {
  const { groups, series } = props;
  const chartGroups = React.useMemo<IChartGroup[]>(
    () =>
      groups.map(g => ({
        key: g.key,
        label: groupLabel(g.values),
        color: g.color,
        series: g.runIds
          .map(id => series.get(id))
          .filter((s): s is NonNullable<typeof s> => s !== undefined)
      })),
    [groups, series]
  );
  return (
    <GroupChart
      name={props.name}
      groups={chartGroups}
      band={props.band}
      zoomed={props.zoomed}
      loading={props.loading}
      onZoom={props.onZoom}
      trans={props.trans}
    />
  );
}

/** How a param's values lie on a parallel axis: numbers (log when they span ≥ 100×), or labels. */
function paramAxis(
  key: string,
  runs: readonly ICompareRun[]
): {
  axis: IParallelAxis;
  value: (run: ICompareRun) => number | string | null;
} {
  const present = runs
    .map(r => r.params[key])
    .filter((v): v is JSONValue => v !== undefined);
  const numeric =
    present.length > 0 &&
    present.every(v => typeof v === 'number' && Number.isFinite(v));
  if (numeric) {
    const nums = present as number[];
    const lo = Math.min(...nums);
    const hi = Math.max(...nums);
    const log = lo > 0 && hi / lo >= 100;
    return {
      axis: { name: key, axis: log ? 'log' : 'value', id: `param-${key}` },
      value: r => {
        const v = r.params[key];
        return typeof v === 'number' ? v : null;
      }
    };
  }
  const label = (v: JSONValue) => formatValue(v);
  const categories = [...new Set(present.map(label))].sort((a, b) => {
    const na = Number(a);
    const nb = Number(b);
    return Number.isFinite(na) && Number.isFinite(nb)
      ? na - nb
      : a.localeCompare(b);
  });
  return {
    axis: { name: key, axis: 'category', categories, id: `param-${key}` },
    value: r => (key in r.params ? label(r.params[key]) : null)
  };
}

/** Parallel coordinates of the differing params to a metric's latest value, one line per run. */
function ParallelSection({
  model,
  trans
}: {
  model: CompareModel;
  trans: TranslationBundle;
}): JSX.Element | null {
  const data = model.data!;
  const metric = model.parallelMetric;
  const groups = model.groups;
  const runs = data.runs;
  const differ = data.params_differ;
  const axes = React.useMemo(() => {
    const params = differ
      .slice(0, PARALLEL_PARAMS_MAX)
      .map(k => paramAxis(k, runs));
    return {
      list: [
        ...params.map(p => p.axis),
        ...(metric
          ? [{ name: metric, axis: 'value' as const, id: 'metric' }]
          : [])
      ],
      params
    };
  }, [runs, differ, metric]);
  const colorOf = React.useMemo(() => {
    const map = new Map<string, number>();
    if (groups) {
      for (const g of groups) {
        for (const id of g.runIds) {
          map.set(id, g.color);
        }
      }
    } else {
      runs.forEach((r, i) => map.set(r.id, i));
    }
    return map;
  }, [runs, groups]);
  const rows = React.useMemo<IParallelRow<string>[]>(
    () =>
      runs
        .filter(r => !metric || metricNumber(r.metrics[metric]) !== null)
        .map(r => ({
          key: r.id,
          values: [
            ...axes.params.map(p => p.value(r)),
            ...(metric ? [metricNumber(r.metrics[metric])] : [])
          ]
        })),
    // colorOf: a new grouping recolours the lines
    [runs, axes, metric, colorOf]
  );
  if (!axes.list.length) {
    return null;
  }
  const brushed = model.brushed;
  const left = runs.length - rows.length;
  return (
    <figure className="jp-mlp-SweepChart jp-mlp-CompareParallel">
      <figcaption className="jp-mlp-Chart-title">
        <span className="jp-mlp-Chart-name">
          {trans.__('Parameters → metric')}
        </span>
        {data.metrics.length > 0 && (
          <select
            className="jp-mod-styled jp-mlp-CompareParallel-metric"
            aria-label={trans.__('Metric on the last axis')}
            value={metric ?? ''}
            onChange={e => model.setParallelMetric(e.currentTarget.value)}
          >
            {data.metrics.map(k => (
              <option key={k} value={k}>
                {trans.__('%1 (latest)', k)}
              </option>
            ))}
          </select>
        )}
        <span className="jp-mlp-Chart-note">
          {brushed
            ? trans.__('%1 of %2 runs in the brush', brushed.size, rows.length)
            : trans.__('drag along an axis to pick runs')}
          {left > 0 &&
            ' · ' + trans._n('%1 run without it', '%1 runs without it', left)}
        </span>
      </figcaption>
      <ParallelCoordinates
        axes={axes.list}
        rows={rows}
        color={(theme, row) =>
          theme.palette[(colorOf.get(row.key) ?? 0) % theme.palette.length]
        }
        brushed={brushed !== null}
        onBrush={ids => model.setBrushed(ids)}
        className="jp-mlp-CompareParallel-box"
      />
    </figure>
  );
}
