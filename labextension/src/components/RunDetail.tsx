/**
 * A run in the main area: params, metric charts, GPU timeline, cell timeline, outputs and
 * artifacts, environment and lineage, with the actions Rerun…, Pin and Open snapshot notebook.
 * Every user string is rendered as React text.
 */
import { TranslationBundle } from '@jupyterlab/translation';
import { Button } from '@jupyterlab/ui-components';
import * as React from 'react';

import { blobUrl, ICell, IRun, NotebookWhich } from '../api';
import { RunDetailModel } from '../model/RunDetailModel';
import { RunChangeKind } from '../model/runActions';
import { MetricChart, GpuChart } from './charts/MetricChart';
import {
  formatBytes,
  formatDuration,
  runDuration,
  formatMetric,
  formatTime,
  formatValue
} from './format';
import { useSignal } from './hooks';

export interface IRunDetailActions {
  rerun: (id: string) => void;
  /** Start a parameter sweep from the run (the Sweep… dialog). */
  sweep?: (id: string) => void;
  /** Open a sweep's view (the run is one of its trials). */
  openSweep?: (id: string) => void;
  openRun: (id: string) => void;
  openNotebook: (id: string, which: NotebookWhich) => void;
  /** Show runs matching a filter in the runs panel. */
  showInPanel: (filter: string) => void;
  /**
   * Change the run (its owner's and the admins' actions: rename, tags, notes, pin, delete,
   * cancel), asking what is needed first; a refusal is shown in this view.
   */
  change: (kind: RunChangeKind, id: string) => void;
}

export interface IRunDetailProps {
  model: RunDetailModel;
  actions: IRunDetailActions;
  trans: TranslationBundle;
}

export function RunDetail({
  model,
  actions,
  trans
}: IRunDetailProps): JSX.Element {
  useSignal(model.changed);
  const run = model.run;
  if (model.error && !run) {
    return (
      <div className="jp-mlp-RunDetail">
        <p className="jp-mlp-RunDetail-error" role="alert">
          {trans.__('Could not load run %1: %2', model.id, model.error)}
        </p>
      </div>
    );
  }
  if (!run) {
    return (
      <div className="jp-mlp-RunDetail">
        <p className="jp-mlp-RunsPanel-note">{trans.__('Loading run…')}</p>
      </div>
    );
  }
  return (
    <div
      className="jp-mlp-RunDetail"
      data-run-id={run.id}
      data-owner={run.owner ?? undefined}
    >
      {model.deleted && (
        <p className="jp-mlp-RunDetail-error" role="status">
          {trans.__('This run was deleted.')}
        </p>
      )}
      <Header run={run} model={model} actions={actions} trans={trans} />
      <Section title={trans.__('Parameters')} className="jp-mlp-Params">
        <ParamsTable model={model} trans={trans} />
      </Section>
      <Section title={trans.__('Metrics')} className="jp-mlp-Metrics">
        <Metrics model={model} trans={trans} />
      </Section>
      <Section title={trans.__('Cells')} className="jp-mlp-CellsSection">
        <CellTimeline run={run} cells={model.cells} trans={trans} />
      </Section>
      <Section title={trans.__('GPU')} className="jp-mlp-Gpu">
        <Gpu run={run} model={model} trans={trans} />
      </Section>
      <Section
        title={trans.__('Outputs and artifacts')}
        className="jp-mlp-Outputs"
      >
        <Outputs run={run} trans={trans} />
      </Section>
      <Section title={trans.__('Environment')} className="jp-mlp-Environment">
        <Environment run={run} trans={trans} />
      </Section>
      <Section title={trans.__('Lineage')} className="jp-mlp-Lineage">
        <Lineage run={run} model={model} actions={actions} trans={trans} />
      </Section>
    </div>
  );
}

function Section(props: {
  title: string;
  className: string;
  children: React.ReactNode;
}): JSX.Element {
  return (
    <section className={`jp-mlp-Section ${props.className}`}>
      <h2 className="jp-mlp-Section-title">{props.title}</h2>
      {props.children}
    </section>
  );
}

function Header({
  run,
  model,
  actions,
  trans
}: {
  run: IRun;
  model: RunDetailModel;
  actions: IRunDetailActions;
  trans: TranslationBundle;
}): JSX.Element {
  return (
    <header className="jp-mlp-RunDetail-header">
      <div className="jp-mlp-RunDetail-heading">
        <h1 className="jp-mlp-RunDetail-name">{run.name || run.id}</h1>
        <span className="jp-mlp-Status" data-status={run.status}>
          {run.status}
        </span>
        {run.pinned && (
          <span className="jp-mlp-RunDetail-pinned" title={trans.__('Pinned')}>
            ★
          </span>
        )}
      </div>
      <dl className="jp-mlp-Facts">
        <Fact label={trans.__('Id')} value={run.id} code />
        <Fact label={trans.__('Project')} value={run.project} />
        {run.owner && (
          <div className="jp-mlp-Fact jp-mlp-RunDetail-owner">
            <dt>{trans.__('Owner')}</dt>
            <dd>
              <span
                className="jp-mlp-Owner"
                data-mine={model.mine || undefined}
              >
                {run.owner}
              </span>
              {model.mine && (
                <span className="jp-mlp-Muted"> {trans.__('(you)')}</span>
              )}
            </dd>
          </div>
        )}
        <Fact label={trans.__('Kind')} value={run.kind} />
        <Fact
          label={trans.__('Started')}
          value={formatTime(run.started_at ?? run.created_at)}
        />
        <Fact
          label={trans.__('Duration')}
          value={formatDuration(runDuration(run))}
        />
        <Fact label={trans.__('Notebook')} value={run.notebook} />
        {run.tags && run.tags.length > 0 && (
          <Fact label={trans.__('Tags')} value={run.tags.join(', ')} />
        )}
      </dl>
      {run.error && (
        <p className="jp-mlp-RunDetail-error" role="status">
          {run.error.ename}: {run.error.evalue}
        </p>
      )}
      {run.notes && <p className="jp-mlp-RunDetail-notes">{run.notes}</p>}
      <div className="jp-mlp-RunDetail-actions">
        <Button
          small
          className="jp-mlp-RerunButton"
          onClick={() => actions.rerun(run.id)}
        >
          {trans.__('Rerun…')}
        </Button>
        {actions.sweep && (
          <Button
            small
            className="jp-mlp-SweepButton"
            onClick={() => actions.sweep?.(run.id)}
          >
            {trans.__('Sweep…')}
          </Button>
        )}
        {model.offers('pin') && (
          <Button
            small
            minimal
            className="jp-mlp-RunDetail-pin"
            aria-pressed={!!run.pinned}
            onClick={() => actions.change('pin', run.id)}
          >
            {run.pinned ? trans.__('Unpin') : trans.__('Pin')}
          </Button>
        )}
        {(
          [
            ['rename', 'jp-mlp-RunDetail-rename', trans.__('Rename…')],
            ['tags', 'jp-mlp-RunDetail-tags', trans.__('Tags…')],
            ['notes', 'jp-mlp-RunDetail-notes-edit', trans.__('Notes…')]
          ] as const
        ).map(
          ([change, className, label]) =>
            model.offers(change) && (
              <Button
                key={change}
                small
                minimal
                className={className}
                onClick={() => actions.change(change, run.id)}
              >
                {label}
              </Button>
            )
        )}
        <Button
          small
          minimal
          className="jp-mlp-RunDetail-snapshot"
          onClick={() => actions.openNotebook(run.id, 'start')}
        >
          {trans.__('Open snapshot notebook')}
        </Button>
        {run.kind && run.kind !== 'interactive' && (
          <Button
            small
            minimal
            onClick={() => actions.openNotebook(run.id, 'output')}
          >
            {trans.__('Open executed notebook')}
          </Button>
        )}
        {model.offers('cancel') && (
          <Button
            small
            minimal
            className="jp-mlp-RunDetail-cancel"
            onClick={() => actions.change('cancel', run.id)}
          >
            {trans.__('Cancel')}
          </Button>
        )}
        <Button small minimal onClick={() => void model.load()}>
          {trans.__('Reload')}
        </Button>
        {model.offers('delete') && !model.deleted && (
          <Button
            small
            minimal
            className="jp-mlp-RunDetail-delete"
            onClick={() => actions.change('delete', run.id)}
          >
            {trans.__('Delete…')}
          </Button>
        )}
      </div>
      {model.actionError && (
        <p className="jp-mlp-RunDetail-error" role="alert">
          {model.actionError}
        </p>
      )}
    </header>
  );
}

function Fact(props: {
  label: string;
  value: string | null | undefined;
  code?: boolean;
}): JSX.Element | null {
  if (!props.value) {
    return null;
  }
  return (
    <div className="jp-mlp-Fact">
      <dt>{props.label}</dt>
      <dd>{props.code ? <code>{props.value}</code> : props.value}</dd>
    </div>
  );
}

function ParamsTable({
  model,
  trans
}: {
  model: RunDetailModel;
  trans: TranslationBundle;
}): JSX.Element {
  const params = model.params.length
    ? model.params
    : Object.entries(model.run?.params ?? {}).map(([key, value]) => ({
        key,
        value,
        type: null,
        source: null
      }));
  if (!params.length) {
    return (
      <p className="jp-mlp-Empty">{trans.__('No parameters recorded.')}</p>
    );
  }
  return (
    <table className="jp-mlp-Table">
      <thead>
        <tr>
          <th>{trans.__('Name')}</th>
          <th>{trans.__('Value')}</th>
          <th>{trans.__('Type')}</th>
          <th>{trans.__('From')}</th>
        </tr>
      </thead>
      <tbody>
        {params.map(p => (
          <tr key={p.key} data-param={p.key}>
            <td>
              <code>{p.key}</code>
            </td>
            <td className="jp-mlp-Value">{formatValue(p.value)}</td>
            <td>{p.type ?? ''}</td>
            <td>{p.source ?? ''}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Metrics({
  model,
  trans
}: {
  model: RunDetailModel;
  trans: TranslationBundle;
}): JSX.Element {
  const keys = model.metricKeys;
  if (!keys.length) {
    return <p className="jp-mlp-Empty">{trans.__('No metrics logged.')}</p>;
  }
  const charted = new Set(model.chartedKeys);
  const rest = keys.filter(k => !charted.has(k.key));
  return (
    <>
      <div className="jp-mlp-Charts">
        {keys
          .filter(k => charted.has(k.key))
          .map((k, i) => (
            <MetricChart
              key={k.key}
              name={k.key}
              state={model.series(k.key)}
              latest={k.value}
              color={i}
              onZoom={range => model.zoom(k.key, range)}
              trans={trans}
            />
          ))}
      </div>
      {rest.length > 0 && (
        <table className="jp-mlp-Table">
          <tbody>
            {rest.map(k => (
              <tr key={k.key}>
                <td>
                  <code>{k.key}</code>
                </td>
                <td>{formatMetric(k.value)}</td>
                <td>{trans._n('%1 point', '%1 points', k.count)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}

/** First non-empty line of a cell's source. */
function firstLine(source: string | null | undefined): string {
  const line = (source ?? '').split('\n').find(l => l.trim()) ?? '';
  return line.length > 120 ? line.slice(0, 119) + '…' : line;
}

function gpuSummary(cell: ICell): string {
  const gpus = Object.entries(cell.gpu ?? {});
  return gpus
    .map(([index, g]) => {
      const parts: string[] = [];
      if (typeof g.util_mean === 'number') {
        parts.push(`${Math.round(g.util_mean)}%`);
      }
      const mem = g.proc_mem_peak ?? g.mem_peak;
      if (typeof mem === 'number') {
        parts.push(formatBytes(mem));
      }
      return parts.length ? `GPU${index} ${parts.join(' ')}` : '';
    })
    .filter(Boolean)
    .join(', ');
}

/**
 * Which cells took the time (and the GPU): a strip with each cell where it ran in the run's
 * time, then the cells in order with a bar for their duration; failing cells are highlighted.
 */
export function CellTimeline({
  run,
  cells,
  trans
}: {
  run: IRun;
  cells: ICell[];
  trans: TranslationBundle;
}): JSX.Element {
  const [open, setOpen] = React.useState<number | null>(null);
  if (!cells.length) {
    return <p className="jp-mlp-Empty">{trans.__('No cells recorded.')}</p>;
  }
  const longest = Math.max(...cells.map(c => c.duration ?? 0), 1e-9);
  const total = cells.reduce((sum, c) => sum + (c.duration ?? 0), 0);
  const failed = cells.filter(c => c.status === 'error').length;
  const starts = cells.map(c => c.started_at ?? 0).filter(t => t > 0);
  const t0 = Math.min(run.started_at ?? Infinity, ...starts);
  const t1 = Math.max(
    ...cells.map(c => (c.started_at ?? t0) + (c.duration ?? 0)),
    t0 + 1e-6
  );
  const span = t1 - t0;
  return (
    <div className="jp-mlp-CellTimeline">
      <p className="jp-mlp-CellTimeline-summary">
        {trans._n('%1 cell', '%1 cells', cells.length)}
        {' · '}
        {trans.__('%1 in cells', formatDuration(total))}
        {failed > 0 && (
          <>
            {' · '}
            <span className="jp-mlp-CellTimeline-failed">
              {trans._n('%1 failed', '%1 failed', failed)}
            </span>
          </>
        )}
      </p>
      {Number.isFinite(span) && (
        <div className="jp-mlp-CellStrip" aria-hidden="true">
          {cells.map(c => (
            <span
              key={c.seq}
              className="jp-mlp-CellStrip-cell"
              data-status={c.status}
              title={`[${c.execution_count ?? ''}] ${firstLine(c.source)} — ${formatDuration(c.duration)}`}
              style={{
                left: `${(((c.started_at ?? t0) - t0) / span) * 100}%`,
                width: `max(2px, ${((c.duration ?? 0) / span) * 100}%)`
              }}
            />
          ))}
        </div>
      )}
      <ol className="jp-mlp-Cells">
        {cells.map(c => (
          <li
            key={c.seq}
            className={`jp-mlp-Cell${c.status === 'error' ? ' jp-mod-error' : ''}`}
            data-status={c.status}
            data-seq={c.seq}
          >
            <button
              className="jp-mlp-Cell-row"
              aria-expanded={open === c.seq}
              onClick={() => setOpen(open === c.seq ? null : c.seq)}
            >
              <span className="jp-mlp-Cell-count">
                [{c.execution_count ?? ' '}]
              </span>
              <code className="jp-mlp-Cell-source">{firstLine(c.source)}</code>
              <span className="jp-mlp-Cell-bar">
                <span
                  style={{ width: `${((c.duration ?? 0) / longest) * 100}%` }}
                />
              </span>
              <span className="jp-mlp-Cell-duration">
                {formatDuration(c.duration)}
              </span>
              <span className="jp-mlp-Cell-gpu">{gpuSummary(c)}</span>
            </button>
            {c.error && (
              <div className="jp-mlp-Cell-error">
                {c.error.ename ?? trans.__('Error')}
                {c.error.evalue ? `: ${c.error.evalue}` : ''}
              </div>
            )}
            {open === c.seq && (
              <pre className="jp-mlp-Cell-full">{c.source ?? ''}</pre>
            )}
          </li>
        ))}
      </ol>
    </div>
  );
}

function Gpu({
  run,
  model,
  trans
}: {
  run: IRun;
  model: RunDetailModel;
  trans: TranslationBundle;
}): JSX.Element {
  const info = run.gpu;
  const timeline = Object.entries(model.gpu?.gpus ?? {}).filter(
    ([, samples]) => samples.length > 0
  );
  const devices = new Map((info?.devices ?? []).map(d => [String(d.index), d]));
  const figures = Object.entries(info?.run ?? {});
  if (!timeline.length && !figures.length) {
    return (
      <p className="jp-mlp-Empty">
        {info?.enabled === false && info.reason
          ? trans.__('No GPU recorded: %1', info.reason)
          : trans.__('No GPU samples.')}
      </p>
    );
  }
  return (
    <>
      {figures.length > 0 && (
        <table className="jp-mlp-Table">
          <thead>
            <tr>
              <th>{trans.__('GPU')}</th>
              <th>{trans.__('Mean util.')}</th>
              <th>{trans.__('Max util.')}</th>
              <th>{trans.__('Peak memory')}</th>
              <th>{trans.__('Energy')}</th>
            </tr>
          </thead>
          <tbody>
            {figures.map(([index, f]) => (
              <tr key={index}>
                <td>
                  {index} {devices.get(index)?.name ?? ''}
                </td>
                <td>
                  {typeof f.util_mean === 'number'
                    ? `${f.util_mean.toFixed(0)}%`
                    : ''}
                </td>
                <td>
                  {typeof f.util_max === 'number'
                    ? `${f.util_max.toFixed(0)}%`
                    : ''}
                </td>
                <td>{formatBytes(f.mem_peak)}</td>
                <td>
                  {typeof f.energy_j === 'number'
                    ? `${(f.energy_j / 1000).toFixed(1)} kJ`
                    : ''}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <div className="jp-mlp-Charts">
        {timeline.map(([index, samples]) => (
          <GpuChart
            key={index}
            title={trans.__('GPU %1 %2', index, devices.get(index)?.name ?? '')}
            samples={samples}
            trans={trans}
          />
        ))}
      </div>
    </>
  );
}

function Outputs({
  run,
  trans
}: {
  run: IRun;
  trans: TranslationBundle;
}): JSX.Element {
  const outputs = run.outputs ?? [];
  if (!outputs.length) {
    return <p className="jp-mlp-Empty">{trans.__('No outputs.')}</p>;
  }
  return (
    <table className="jp-mlp-Table">
      <tbody>
        {outputs.map(o => (
          <tr key={o.name} data-output={o.name}>
            <td>
              <code>{o.name}</code>
            </td>
            {o.kind === 'artifact' && o.blob ? (
              <td>
                <a
                  className="jp-mlp-Download"
                  href={blobUrl(run.id, o.blob)}
                  download={o.filename ?? o.name}
                >
                  {o.filename ?? o.name}
                </a>{' '}
                <span className="jp-mlp-Muted">{formatBytes(o.size)}</span>
              </td>
            ) : (
              <td className="jp-mlp-Value">{formatValue(o.value)}</td>
            )}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Environment({
  run,
  trans
}: {
  run: IRun;
  trans: TranslationBundle;
}): JSX.Element {
  const env = run.env ?? {};
  const git = run.git;
  const packages = Object.entries(env.packages ?? {}).sort(([a], [b]) =>
    a.localeCompare(b)
  );
  return (
    <>
      <dl className="jp-mlp-Facts">
        <Fact
          label={trans.__('Python')}
          value={env.python ? String(env.python) : null}
        />
        <Fact label={trans.__('Host')} value={run.host} />
        <Fact label={trans.__('User')} value={run.user} />
        <Fact label={trans.__('Kernel')} value={run.kernel} />
        {git?.commit && (
          <div className="jp-mlp-Fact">
            <dt>{trans.__('Git')}</dt>
            <dd>
              <code>{git.commit.slice(0, 12)}</code>
              {git.branch ? ` (${git.branch})` : ''}
              {git.dirty ? ' ' + trans.__('with uncommitted changes') : ''}
              {git.diff && (
                <>
                  {' · '}
                  <a
                    className="jp-mlp-Download"
                    href={blobUrl(run.id, git.diff)}
                    download={`${run.id}.diff`}
                  >
                    {trans.__('download diff')}
                  </a>
                </>
              )}
            </dd>
          </div>
        )}
      </dl>
      {packages.length > 0 && (
        <details className="jp-mlp-Packages">
          <summary>
            {trans._n('%1 package', '%1 packages', packages.length)}
          </summary>
          <table className="jp-mlp-Table">
            <tbody>
              {packages.map(([name, version]) => (
                <tr key={name}>
                  <td>{name}</td>
                  <td>{String(version)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </details>
      )}
    </>
  );
}

function RunLink({
  run,
  actions
}: {
  run: { id: string; name?: string; status?: string };
  actions: IRunDetailActions;
}): JSX.Element {
  return (
    <span className="jp-mlp-RunLink">
      <button className="jp-mlp-Link" onClick={() => actions.openRun(run.id)}>
        {run.name || run.id}
      </button>{' '}
      <code className="jp-mlp-Muted">{run.id}</code>
      {run.status && (
        <>
          {' '}
          <span className="jp-mlp-Status" data-status={run.status}>
            {run.status}
          </span>
        </>
      )}
    </span>
  );
}

function Lineage({
  run,
  model,
  actions,
  trans
}: {
  run: IRun;
  model: RunDetailModel;
  actions: IRunDetailActions;
  trans: TranslationBundle;
}): JSX.Element {
  const children = model.children;
  return (
    <dl className="jp-mlp-Facts jp-mlp-Lineage-list">
      <div className="jp-mlp-Fact">
        <dt>{trans.__('Parent')}</dt>
        <dd>
          {run.parent_id ? (
            <RunLink
              run={model.parent ?? { id: run.parent_id }}
              actions={actions}
            />
          ) : (
            trans.__('none')
          )}
        </dd>
      </div>
      <div className="jp-mlp-Fact">
        <dt>{trans.__('Reruns')}</dt>
        <dd>
          {children.length === 0 ? (
            trans.__('none')
          ) : (
            <ul className="jp-mlp-Children">
              {children.map(c => (
                <li key={c.id}>
                  <RunLink run={c} actions={actions} />{' '}
                  <span className="jp-mlp-Muted">
                    {Object.entries(c.params ?? {})
                      .map(([k, v]) => `${k}=${formatValue(v)}`)
                      .join(' ')}
                  </span>
                </li>
              ))}
            </ul>
          )}
          {children.length > 0 && (
            <button
              className="jp-mlp-Link"
              onClick={() => actions.showInPanel(`parent = "${run.id}"`)}
            >
              {trans.__('show in the runs panel')}
            </button>
          )}
        </dd>
      </div>
      {run.sweep_id && (
        <div className="jp-mlp-Fact">
          <dt>{trans.__('Sweep')}</dt>
          <dd>
            {trans.__('a trial of')}{' '}
            <button
              className="jp-mlp-Link"
              onClick={() =>
                actions.openSweep
                  ? actions.openSweep(run.sweep_id!)
                  : actions.showInPanel(`sweep = "${run.sweep_id}"`)
              }
            >
              {run.sweep_id}
            </button>
          </dd>
        </div>
      )}
      {run.pipeline_run_id && (
        <div className="jp-mlp-Fact">
          <dt>{trans.__('Pipeline')}</dt>
          <dd>
            <button
              className="jp-mlp-Link"
              onClick={() =>
                actions.showInPanel(`pipeline_run = "${run.pipeline_run_id}"`)
              }
            >
              {run.pipeline_run_id}
            </button>
            {run.stage ? ' ' + trans.__('stage %1', run.stage) : ''}
          </dd>
        </div>
      )}
    </dl>
  );
}
