/**
 * Runs side by side: params (differing ones highlighted, or only those), latest metrics, and each
 * metric's curves of every run overlaid.
 */
import { TranslationBundle } from '@jupyterlab/translation';
import * as React from 'react';

import { CompareModel } from '../model/CompareModel';
import { OverlayChart } from './charts/MetricChart';
import { formatMetric, formatValue } from './format';
import { useSignal } from './hooks';

export interface ICompareViewProps {
  model: CompareModel;
  trans: TranslationBundle;
  openRun: (id: string) => void;
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
  const shown = model.shownParams;
  return (
    <div className="jp-mlp-Compare">
      <h1 className="jp-mlp-Compare-title">
        {trans._n('Comparing %1 run', 'Comparing %1 runs', runs.length)}
      </h1>
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
          <table className="jp-mlp-Table jp-mlp-Compare-table">
            <thead>
              <tr>
                <th scope="col">{trans.__('Parameter')}</th>
                {runs.map((r, i) => (
                  <th key={r.id} scope="col" data-color={i}>
                    <button
                      className="jp-mlp-Link"
                      onClick={() => openRun(r.id)}
                    >
                      {labels[i].label}
                    </button>
                    <div className="jp-mlp-Muted">
                      <code>{r.id}</code>{' '}
                      <span className="jp-mlp-Status" data-status={r.status}>
                        {r.status}
                      </span>
                    </div>
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {shown.length === 0 && (
                <tr>
                  <td colSpan={runs.length + 1} className="jp-mlp-Empty">
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
                  {runs.map(r => (
                    <td key={r.id} className="jp-mlp-Value">
                      {key in r.params ? formatValue(r.params[key]) : '—'}
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
                    <th scope="col">{trans.__('Metric (latest)')}</th>
                    {runs.map((r, i) => (
                      <th key={r.id} scope="col" data-color={i}>
                        {labels[i].label}
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
                      {runs.map(r => (
                        <td key={r.id} className="jp-mod-numeric">
                          {formatMetric(r.metrics[key])}
                        </td>
                      ))}
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
            <div className="jp-mlp-Charts">
              {model.chartedKeys.map(key => {
                const state = model.series(key);
                return (
                  <OverlayChart
                    key={key}
                    name={key}
                    runs={labels}
                    series={state.series}
                    zoomed={state.range !== null}
                    loading={state.loading}
                    onZoom={range => model.zoom(key, range)}
                    trans={trans}
                  />
                );
              })}
            </div>
          </>
        )}
      </section>
    </div>
  );
}
