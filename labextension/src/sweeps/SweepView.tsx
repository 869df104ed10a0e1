/**
 * A sweep in the main area: its header (status, objective, trials by status of the budget, the
 * best so far with a link to its run), Cancel sweep while it runs, the charts and the live trials
 * table (the best row marked; a row opens its run; the parallel plot's brush narrows it).
 */
import { TranslationBundle } from '@jupyterlab/translation';
import { Button } from '@jupyterlab/ui-components';
import * as React from 'react';

import { ISweepTrial } from '../api/types';
import { formatDuration, formatMetric, formatTime } from '../components/format';
import { useNow, useSignal } from '../components/hooks';
import { ObjectiveChart, ParallelPlot, ScatterPlot } from './charts';
import { categoryLabel, SweepModel } from './SweepModel';

export interface ISweepViewProps {
  model: SweepModel;
  openRun: (id: string) => void;
  trans: TranslationBundle;
}

function trialDuration(trial: ISweepTrial, now: number): number | null {
  if (trial.started_at === null) {
    return null;
  }
  const end = trial.ended_at ?? (trial.status === 'running' ? now : null);
  return end === null ? null : Math.max(0, end - trial.started_at);
}

export function SweepView({
  model,
  openRun,
  trans
}: ISweepViewProps): JSX.Element {
  useSignal(model.changed);
  const now = useNow(model.final ? null : 1000);
  const sweep = model.sweep;
  if (!sweep) {
    return (
      <div className="jp-mlp-Sweep">
        {model.error ? (
          <p className="jp-mlp-RunDetail-error" role="alert">
            {trans.__('Could not load sweep %1: %2', model.id, model.error)}
          </p>
        ) : (
          <p className="jp-mlp-RunsPanel-note">{trans.__('Loading sweep…')}</p>
        )}
      </div>
    );
  }
  const counts = sweep.counts ?? {};
  const done = counts.finished ?? 0;
  const maximize = sweep.objective?.direction !== 'minimize';
  const objective = sweep.objective?.text ?? '';
  const objectiveKey = sweep.objective?.key ?? trans.__('objective');
  const trials = model.trials;
  const brushed = model.brushed;
  const rows = brushed ? trials.filter(t => brushed.has(t.number)) : trials;
  const searched = model.searched;
  const chartProps = {
    trials,
    searched,
    objective: objectiveKey,
    maximize,
    trans
  };
  return (
    <div
      className="jp-mlp-Sweep"
      data-sweep-id={sweep.id}
      data-status={sweep.status}
    >
      <header className="jp-mlp-Sweep-header">
        <div className="jp-mlp-RunDetail-title">
          <h1>{sweep.name || trans.__('Sweep %1', sweep.id.slice(0, 8))}</h1>
          <span className="jp-mlp-Status" data-status={sweep.status}>
            {sweep.status}
          </span>
          {model.offersCancel && (
            <Button
              small
              className="jp-mlp-Sweep-cancel"
              disabled={model.cancelling || sweep.status === 'cancelling'}
              onClick={() => void model.cancel()}
            >
              {trans.__('Cancel sweep')}
            </Button>
          )}
        </div>
        <dl className="jp-mlp-Facts jp-mlp-Sweep-facts">
          <dt>{trans.__('Objective')}</dt>
          <dd>
            <code className="jp-mlp-Sweep-objectiveText">{objective}</code>
          </dd>
          <dt>{trans.__('Trials')}</dt>
          <dd className="jp-mlp-Sweep-counts">
            {trans.__(
              '%1 done, %2 running, %3 pruned, %4 failed of %5',
              done,
              counts.running ?? 0,
              counts.pruned ?? 0,
              (counts.failed ?? 0) + (counts.cancelled ?? 0),
              sweep.budget
            )}
          </dd>
          <dt>{trans.__('Best')}</dt>
          <dd className="jp-mlp-Sweep-best">
            {sweep.best_value === null || sweep.best_trial === null ? (
              <span className="jp-mlp-Muted">{trans.__('none yet')}</span>
            ) : (
              <>
                <strong className="jp-mlp-Sweep-bestValue">
                  {formatMetric(sweep.best_value)}
                </strong>{' '}
                {trans.__('at trial %1', sweep.best_trial)}
                {sweep.best_run_id && (
                  <>
                    {' · '}
                    <button
                      className="jp-mlp-Link jp-mlp-Sweep-bestRun"
                      onClick={() => openRun(sweep.best_run_id!)}
                    >
                      {trans.__('open run %1', sweep.best_run_id.slice(0, 8))}
                    </button>
                  </>
                )}
              </>
            )}
          </dd>
          {sweep.owner && (
            <>
              <dt>{trans.__('Owner')}</dt>
              <dd className="jp-mlp-Sweep-owner">
                <span
                  className="jp-mlp-Owner"
                  data-mine={model.mine ? 'true' : undefined}
                >
                  {sweep.owner}
                </span>
                {model.mine && (
                  <span className="jp-mlp-Muted"> {trans.__('(you)')}</span>
                )}
              </dd>
            </>
          )}
          <dt>{trans.__('Sampler')}</dt>
          <dd>
            {sweep.sampler}
            {', '}
            {trans.__('%1 at once', sweep.concurrency)}
            {sweep.executor ? ` · ${sweep.executor}` : ''}
          </dd>
          <dt>{trans.__('Template')}</dt>
          <dd>
            <button
              className="jp-mlp-Link"
              onClick={() => openRun(sweep.template_id)}
            >
              <code>{sweep.template_id}</code>
            </button>
          </dd>
          <dt>{trans.__('Started')}</dt>
          <dd>{formatTime(sweep.started_at ?? sweep.created_at)}</dd>
        </dl>
        {sweep.note && <p className="jp-mlp-Muted">{sweep.note}</p>}
        {sweep.error !== null && sweep.error !== undefined && (
          <p className="jp-mlp-RunDetail-error" role="status">
            {typeof sweep.error === 'string'
              ? sweep.error
              : JSON.stringify(sweep.error)}
          </p>
        )}
        {(model.actionError || (model.error && sweep)) && (
          <p className="jp-mlp-RunDetail-error" role="alert">
            {model.actionError ?? model.error}
          </p>
        )}
      </header>
      {searched.length > 0 && (
        <div className="jp-mlp-Sweep-charts">
          <ObjectiveChart {...chartProps} />
          <ScatterPlot {...chartProps} />
          <ParallelPlot
            {...chartProps}
            brushed={brushed}
            onBrush={numbers => model.setBrushed(numbers)}
          />
        </div>
      )}
      <section className="jp-mlp-Section jp-mlp-Sweep-trials">
        <h2 className="jp-mlp-Section-title">
          {brushed
            ? trans.__('Trials (%1 of %2, brushed)', rows.length, trials.length)
            : trans.__('Trials')}
          {brushed && (
            <button
              className="jp-mlp-Link jp-mlp-Sweep-clearBrush"
              onClick={() => model.setBrushed(null)}
            >
              {trans.__('show all')}
            </button>
          )}
        </h2>
        {trials.length === 0 ? (
          <p className="jp-mlp-Empty">{trans.__('No trials yet.')}</p>
        ) : (
          <table className="jp-mlp-SweepTable">
            <thead>
              <tr>
                <th scope="col">#</th>
                <th scope="col">{trans.__('Status')}</th>
                {searched.map(p => (
                  <th scope="col" key={p.name}>
                    {p.name}
                  </th>
                ))}
                <th scope="col">{objectiveKey}</th>
                <th scope="col">{trans.__('Duration')}</th>
              </tr>
            </thead>
            <tbody>
              {rows.map(t => {
                const best = t.number === sweep.best_trial;
                return (
                  <tr
                    key={t.number}
                    className={`jp-mlp-SweepTable-row${best ? ' jp-mod-best' : ''}`}
                    data-trial={t.number}
                    data-status={t.status}
                    data-best={best ? 'true' : undefined}
                    tabIndex={t.run_id ? 0 : undefined}
                    title={
                      t.run_id
                        ? trans.__('Open run %1', t.run_id)
                        : trans.__('This trial has no run')
                    }
                    onClick={() => t.run_id && openRun(t.run_id)}
                    onKeyDown={e => {
                      if (e.key === 'Enter' && t.run_id) {
                        openRun(t.run_id);
                      }
                    }}
                  >
                    <td className="jp-mlp-SweepTable-number">
                      {best && (
                        <span
                          className="jp-mlp-SweepTable-star"
                          aria-label={trans.__('best')}
                          title={trans.__('best trial')}
                        >
                          ★{' '}
                        </span>
                      )}
                      {t.number}
                    </td>
                    <td>
                      <span className="jp-mlp-Status" data-status={t.status}>
                        {t.status}
                      </span>
                    </td>
                    {searched.map(p => (
                      <td key={p.name} className="jp-mlp-SweepTable-param">
                        {t.params && p.name in t.params
                          ? typeof t.params[p.name] === 'number'
                            ? formatMetric(t.params[p.name] as number)
                            : categoryLabel(t.params[p.name])
                          : ''}
                      </td>
                    ))}
                    <td className="jp-mlp-SweepTable-value">
                      {t.value === null ? '' : formatMetric(t.value)}
                    </td>
                    <td className="jp-mlp-SweepTable-duration">
                      {formatDuration(trialDuration(t, now))}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        )}
      </section>
    </div>
  );
}
