import { TranslationBundle } from '@jupyterlab/translation';
import { Handle, NodeProps, Position } from '@xyflow/react';
import * as React from 'react';

import { useNow } from '../components/hooks';

import { IStageStatus } from '../api';
import { IPortView, StageNode as StageNodeType } from './graph';
import { AFTER_IN, AFTER_OUT, inHandle, outHandle } from './model';

/** What nodes need from the editor without being re-rendered when it changes. */
export interface INodeContext {
  trans: TranslationBundle;
  openRun: (id: string) => void;
}

export const NodeContext = React.createContext<INodeContext | null>(null);

/** Translated names of the stage states. */
export function stateLabel(trans: TranslationBundle, state: string): string {
  switch (state) {
    case 'pending':
      return trans.__('pending');
    case 'queued':
      return trans.__('queued');
    case 'running':
      return trans.__('running');
    case 'cached':
      return trans.__('cached');
    case 'succeeded':
      return trans.__('succeeded');
    case 'failed':
      return trans.__('failed');
    case 'skipped':
      return trans.__('skipped');
    case 'cancelled':
      return trans.__('cancelled');
    case 'orphaned':
      return trans.__('orphaned');
    default:
      return state;
  }
}

/** Seconds as `4.2s`, `3m 05s`, `1h 02m`. */
export function formatDuration(seconds: number): string {
  if (!isFinite(seconds) || seconds < 0) {
    return '';
  }
  if (seconds < 10) {
    return `${seconds.toFixed(1)}s`;
  }
  if (seconds < 60) {
    return `${Math.round(seconds)}s`;
  }
  const m = Math.floor(seconds / 60);
  if (m < 60) {
    return `${m}m ${String(Math.round(seconds % 60)).padStart(2, '0')}s`;
  }
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`;
}

/** Elapsed time of a stage, ticking each second while it runs (only this element re-renders). */
export function Elapsed(props: { status: IStageStatus }): JSX.Element | null {
  const { started_at, ended_at, status } = props.status;
  const running = status === 'running' && !ended_at;
  const now = useNow(running ? 1000 : null);
  if (!started_at) {
    return null;
  }
  const end = ended_at ?? (running ? now : null);
  if (end === null) {
    return null;
  }
  return (
    <span className="jp-mlp-StageNode-elapsed">
      {formatDuration(Math.max(0, end - started_at))}
    </span>
  );
}

function Port(props: {
  port: IPortView;
  kind: 'in' | 'out';
  trans: TranslationBundle;
}): JSX.Element {
  const { port, kind, trans } = props;
  const title = [
    port.type ? `${port.name}: ${port.type}` : port.name,
    port.unknown
      ? kind === 'in'
        ? trans.__('not a parameter of the template')
        : trans.__('the template run never produced this output')
      : '',
    port.issue ?? ''
  ]
    .filter(Boolean)
    .join('\n');
  return (
    <div
      className={`jp-mlp-Port jp-mlp-Port-${kind}`}
      data-port={port.name}
      data-source={port.source}
      data-issue={port.issueLevel ?? undefined}
      data-unknown={port.unknown ? 'true' : undefined}
      title={title}
    >
      <Handle
        type={kind === 'in' ? 'target' : 'source'}
        position={kind === 'in' ? Position.Left : Position.Right}
        id={kind === 'in' ? inHandle(port.name) : outHandle(port.name)}
        className={`jp-mlp-Handle jp-mlp-Handle-${kind}`}
      />
      <span className="jp-mlp-Port-name">{port.name}</span>
      {port.display ? (
        <span className="jp-mlp-Port-value">
          {port.source === 'ref' ? '← ' + port.display : port.display}
        </span>
      ) : null}
      {port.type && kind === 'out' ? (
        <span className="jp-mlp-Port-type">{port.type}</span>
      ) : null}
    </div>
  );
}

function StageNodeView(props: NodeProps<StageNodeType>): JSX.Element {
  const { data } = props;
  const context = React.useContext(NodeContext)!;
  const { trans } = context;
  const status = data.status;
  const state = status ? String(status.status) : null;
  const errors = data.issues.filter(i => i.level === 'error');
  const warnings = data.issues.filter(i => i.level !== 'error');
  const runId = status?.run_id ?? status?.cached_from ?? null;
  const done = status?.cells_done;
  const total = status?.cells_total;
  const issueTitle = data.issues.map(i => i.message).join('\n');

  return (
    <div
      className="jp-mlp-StageNode"
      data-stage={data.name}
      data-status={state ?? 'none'}
      data-issue={
        errors.length ? 'error' : warnings.length ? 'warning' : undefined
      }
      onDoubleClick={runId ? () => context.openRun(runId) : undefined}
    >
      <Handle
        type="target"
        position={Position.Top}
        id={AFTER_IN}
        className="jp-mlp-Handle jp-mlp-Handle-after"
        title={trans.__('runs after (order only)')}
      />
      <div className="jp-mlp-StageNode-header">
        <span className="jp-mlp-StageNode-name" title={data.name}>
          {data.name}
        </span>
        {state ? (
          <span className="jp-mlp-StageNode-state" data-status={state}>
            {stateLabel(trans, state)}
          </span>
        ) : null}
      </div>
      <div className="jp-mlp-StageNode-meta">
        <span
          className="jp-mlp-StageNode-template"
          title={`${data.notebook ?? ''}\n${trans.__('template run %1', data.templateRun)}`}
        >
          {data.notebook
            ? data.notebook.split('/').pop()
            : (data.templateName ?? data.templateRun)}
        </span>
        {!data.cache ? (
          <span className="jp-mlp-StageNode-flag">{trans.__('no cache')}</span>
        ) : null}
        {data.gpus ? (
          <span className="jp-mlp-StageNode-flag">
            {trans._n('%1 GPU', '%1 GPUs', data.gpus)}
          </span>
        ) : null}
      </div>
      {status ? (
        <div className="jp-mlp-StageNode-run">
          <Elapsed status={status} />
          {typeof total === 'number' && total > 0 ? (
            <span className="jp-mlp-StageNode-progress">
              <progress max={total} value={done ?? 0} />
              <span>{trans.__('%1/%2 cells', done ?? 0, total)}</span>
            </span>
          ) : null}
          {runId ? (
            <button
              className="jp-mlp-StageNode-open nodrag"
              title={trans.__('Open run %1', runId)}
              onClick={event => {
                event.stopPropagation();
                context.openRun(runId);
              }}
            >
              {status.cached_from && !status.run_id
                ? trans.__('cached run')
                : trans.__('open run')}
            </button>
          ) : null}
        </div>
      ) : null}
      {data.templateError ? (
        <div className="jp-mlp-StageNode-issue" data-level="error">
          {trans.__(
            'template run %1: %2',
            data.templateRun,
            data.templateError
          )}
        </div>
      ) : null}
      {data.issues.length ? (
        <div
          className="jp-mlp-StageNode-issue"
          data-level={errors.length ? 'error' : 'warning'}
          title={issueTitle}
        >
          {(errors[0] ?? warnings[0]).message}
          {data.issues.length > 1
            ? ' ' + trans.__('(+%1 more)', data.issues.length - 1)
            : ''}
        </div>
      ) : null}
      <div className="jp-mlp-StageNode-ports">
        {data.inputs.map(port => (
          <Port key={'in:' + port.name} port={port} kind="in" trans={trans} />
        ))}
        {data.outputs.map(port => (
          <Port key={'out:' + port.name} port={port} kind="out" trans={trans} />
        ))}
        {!data.inputs.length && !data.outputs.length ? (
          <div className="jp-mlp-Port-none">
            {data.templateName || data.templateError
              ? trans.__('no parameters or outputs')
              : trans.__('loading…')}
          </div>
        ) : null}
      </div>
      <Handle
        type="source"
        position={Position.Bottom}
        id={AFTER_OUT}
        className="jp-mlp-Handle jp-mlp-Handle-after"
        title={trans.__('drag to a stage that must run after this one')}
      />
    </div>
  );
}

export const StageNode = React.memo(StageNodeView);
