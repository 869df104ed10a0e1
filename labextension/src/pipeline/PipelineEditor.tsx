import { TranslationBundle } from '@jupyterlab/translation';
import {
  redoIcon,
  refreshIcon,
  runIcon,
  stopIcon,
  undoIcon
} from '@jupyterlab/ui-components';
import { ReactFlowProvider, Viewport } from '@xyflow/react';
import * as React from 'react';

import { IMe, IPipelineRunSummary, IRun } from '../api';
import { RUN_MIME } from '../mime';
import { Canvas, ICanvasHandle } from './Canvas';
import { Inspector } from './Inspector';
import { IPipelineState, PipelineModel } from './model';
import { askRunOptions } from './RunDialog';
import { FINAL_RUN_STATES } from './runs';
import { jsonEqual } from './spec';
import { NodeContext, stateLabel } from './StageNode';

/** The model's state, re-rendering on each change. */
export function useModelState(model: PipelineModel): IPipelineState {
  const subscribe = React.useCallback(
    (notify: () => void) => {
      const slot = () => notify();
      model.stateChanged.connect(slot);
      return () => {
        model.stateChanged.disconnect(slot);
      };
    },
    [model]
  );
  return React.useSyncExternalStore(subscribe, () => model.state);
}

export interface IPipelineEditorProps {
  model: PipelineModel;
  trans: TranslationBundle;
  /** The canvas is mounted only while the editor is visible (React Flow measures its box). */
  visible: boolean;
}

/** The pipeline editor: toolbar, pinned runs and history, the canvas, the inspector. */
export function PipelineEditor(props: IPipelineEditorProps): JSX.Element {
  const { model, trans, visible } = props;
  const state = useModelState(model);
  const canvas = React.useRef<ICanvasHandle | null>(null);
  const viewport = React.useRef<Viewport | null>(null);
  const autoFit = React.useRef<boolean | null>(null);
  const nodeContext = React.useMemo(
    () => ({ trans, openRun: (id: string) => model.openRun(id) }),
    [trans, model]
  );
  const body = React.useRef<HTMLDivElement | null>(null);
  const [sides, setSides] = React.useState<ISides | null>(null);
  // The side columns open where the canvas keeps room to be read (the shipped example drawn at
  // a legible zoom) and close on a narrow editor, following its width (the file browser opened
  // or closed) until the user toggles one; selecting a stage shows its properties.
  const manual = React.useRef(false);
  const selected = React.useRef(state.selected);
  selected.current = state.selected;
  const hasBody = state.ready && !!state.spec;
  React.useLayoutEffect(() => {
    const node = body.current;
    if (!node) {
      return;
    }
    const follow = () => {
      const width = node.clientWidth;
      if (manual.current || width <= 0) {
        return;
      }
      const fits = sidesFor(width);
      setSides(s => {
        const right = fits.right || (!!selected.current && !!s?.right);
        return s && s.left === fits.left && s.right === right
          ? s
          : { left: fits.left, right };
      });
    };
    follow();
    const observer = new ResizeObserver(follow);
    observer.observe(node);
    return () => observer.disconnect();
  }, [hasBody]);
  React.useEffect(() => {
    if (state.selected) {
      setSides(s => (s && !s.right ? { ...s, right: true } : s));
    }
  }, [state.selected]);
  const toggle = (side: keyof ISides) => {
    manual.current = true;
    setSides(s => {
      const now = s ?? { left: true, right: true };
      return { ...now, [side]: !now[side] };
    });
  };

  if (!state.ready) {
    return (
      <div className="jp-mlp-PipelineEditor-loading">
        {trans.__('Loading…')}
      </div>
    );
  }
  if (!state.spec) {
    return (
      <div className="jp-mlp-PipelineEditor-error" role="alert">
        <p>
          {trans.__(
            'This file cannot be shown as a pipeline: %1',
            state.parseError ?? ''
          )}
        </p>
        <p>
          {trans.__(
            'Open it with the text editor to fix it; the canvas follows the file.'
          )}
        </p>
      </div>
    );
  }
  const addRun = (run: IRun, index: number) => {
    const at = canvas.current?.center() ?? { x: 0, y: 0 };
    void model.addStageFromRun(run.id, {
      x: at.x - 120 + (index % 5) * 30,
      y: at.y - 60 + (index % 5) * 30
    });
  };
  return (
    <div className="jp-mlp-PipelineEditor">
      <Toolbar
        model={model}
        state={state}
        trans={trans}
        canvas={canvas}
        sides={sides ?? { left: true, right: true }}
        toggle={toggle}
      />
      <div className="jp-mlp-PipelineEditor-body" ref={body}>
        <div
          className="jp-mlp-PipelineEditor-left"
          hidden={sides?.left === false}
        >
          <PinnedRuns
            model={model}
            me={state.me}
            pinned={state.pinned}
            error={state.pinnedError}
            trans={trans}
            onAdd={addRun}
          />
          <History
            model={model}
            me={state.me}
            history={state.history}
            error={state.historyError}
            shown={state.runView?.id ?? null}
            trans={trans}
          />
        </div>
        <div className="jp-mlp-PipelineEditor-center">
          <Message model={model} state={state} trans={trans} />
          {state.runView ? (
            <RunBanner model={model} state={state} trans={trans} />
          ) : null}
          {visible ? (
            <NodeContext.Provider value={nodeContext}>
              <ReactFlowProvider>
                <Canvas
                  model={model}
                  state={state}
                  trans={trans}
                  handle={canvas}
                  viewport={viewport}
                  autoFit={autoFit}
                />
              </ReactFlowProvider>
            </NodeContext.Provider>
          ) : null}
        </div>
        <div
          className="jp-mlp-PipelineEditor-right"
          hidden={sides?.right === false}
        >
          <Inspector model={model} state={state} trans={trans} />
        </div>
      </div>
    </div>
  );
}

/** Which side columns are open: pinned runs and history (left), properties (right). */
interface ISides {
  left: boolean;
  right: boolean;
}

/** The canvas width the example needs to be drawn legibly (3 stages at zoom 0.6 or more). */
const CANVAS_MIN = 660;
const LEFT_WIDTH = 220;
const RIGHT_WIDTH = 290;

function sidesFor(width: number): ISides {
  return {
    left: width - LEFT_WIDTH >= CANVAS_MIN,
    right: width - LEFT_WIDTH - RIGHT_WIDTH >= CANVAS_MIN
  };
}

function Toolbar(props: {
  model: PipelineModel;
  state: IPipelineState;
  trans: TranslationBundle;
  canvas: React.MutableRefObject<ICanvasHandle | null>;
  sides: ISides;
  toggle: (side: keyof ISides) => void;
}): JSX.Element {
  const { model, state, trans, canvas, sides, toggle } = props;
  const [busy, setBusy] = React.useState(false);
  const live = state.runView?.live ?? false;
  // Someone else's pipeline run is cancelled only by them (or an admin): no button for it.
  const detail = state.runView?.detail;
  const mayCancel = !!detail && model.mayChange(detail.owner);
  const errors = state.issues.filter(i => i.level === 'error').length;
  const warnings = state.issues.length - errors;
  const onRun = async () => {
    const spec = state.spec;
    if (!spec) {
      return;
    }
    const options = await askRunOptions(spec.parameters ?? {}, trans);
    if (!options) {
      return;
    }
    setBusy(true);
    try {
      await model.run(options.params, options.executor, options.noCache);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div
      className="jp-mlp-PipelineToolbar"
      role="toolbar"
      aria-label={trans.__('Pipeline')}
    >
      <button
        className="jp-mlp-Button jp-mlp-SideToggle"
        aria-pressed={sides.left}
        onClick={() => toggle('left')}
        title={trans.__(
          'Show or hide pinned runs and the runs of this pipeline'
        )}
      >
        {trans.__('Runs')}
      </button>
      <button
        className="jp-mlp-Button jp-mod-accept"
        onClick={() => void onRun()}
        disabled={busy || !Object.keys(state.spec?.stages ?? {}).length}
        title={trans.__('Save and run the pipeline')}
      >
        <runIcon.react tag="span" className="jp-mlp-Button-icon" />
        {trans.__('Run')}
      </button>
      {live && mayCancel ? (
        <button
          className="jp-mlp-Button jp-mlp-PipelineToolbar-cancel"
          onClick={() => void model.cancel()}
          title={trans.__('Cancel the running pipeline')}
        >
          <stopIcon.react tag="span" className="jp-mlp-Button-icon" />
          {trans.__('Cancel run')}
        </button>
      ) : null}
      <span className="jp-mlp-PipelineToolbar-sep" />
      <button
        className="jp-mlp-Button"
        onClick={() => void canvas.current?.autoLayout()}
        title={trans.__('Arrange the stages left to right')}
      >
        {trans.__('Auto-layout')}
      </button>
      <button
        className="jp-mlp-Button"
        onClick={() => canvas.current?.fitView()}
        title={trans.__('Fit the whole pipeline in view (F)')}
      >
        {trans.__('Fit view')}
      </button>
      <span className="jp-mlp-PipelineToolbar-sep" />
      <button
        className="jp-mlp-IconButton"
        onClick={() => model.undo()}
        disabled={!state.canUndo}
        title={trans.__('Undo (Ctrl+Z)')}
        aria-label={trans.__('Undo')}
      >
        <undoIcon.react tag="span" />
      </button>
      <button
        className="jp-mlp-IconButton"
        onClick={() => model.redo()}
        disabled={!state.canRedo}
        title={trans.__('Redo (Ctrl+Shift+Z)')}
        aria-label={trans.__('Redo')}
      >
        <redoIcon.react tag="span" />
      </button>
      <span className="jp-mlp-PipelineToolbar-spacer" />
      <span
        className="jp-mlp-PipelineToolbar-validation"
        data-level={errors ? 'error' : warnings ? 'warning' : 'ok'}
        onClick={() => model.select(null)}
        title={state.issues
          .map(i => (i.stage ? `${i.stage}: ` : '') + i.message)
          .join('\n')}
      >
        {state.validation === 'unavailable'
          ? trans.__('not validated')
          : state.validation === 'pending'
            ? ''
            : errors || warnings
              ? trans.__('%1 errors, %2 warnings', errors, warnings)
              : trans.__('valid')}
      </span>
      {state.warning ? (
        <span className="jp-mlp-PipelineToolbar-warning" title={state.warning}>
          {trans.__('format version')}
        </span>
      ) : null}
      <button
        className="jp-mlp-Button jp-mlp-SideToggle"
        aria-pressed={sides.right}
        onClick={() => toggle('right')}
        title={trans.__('Show or hide the properties of the pipeline or stage')}
      >
        {trans.__('Properties')}
      </button>
    </div>
  );
}

function Message(props: {
  model: PipelineModel;
  state: IPipelineState;
  trans: TranslationBundle;
}): JSX.Element | null {
  const { model, state, trans } = props;
  const message = state.message;

  if (!message) {
    return null;
  }
  return (
    <div
      className="jp-mlp-PipelineMessage"
      data-level={message.level}
      role={message.level === 'error' ? 'alert' : 'status'}
    >
      <span>{message.text}</span>
      <button
        className="jp-mlp-IconButton"
        aria-label={trans.__('Dismiss')}
        onClick={() => model.clearMessage()}
      >
        ×
      </button>
    </div>
  );
}

/** A run's or pipeline run's owner, in a team's store (else nothing). */
function OwnerLabel(props: {
  model: PipelineModel;
  me: IMe | null;
  owner: string | null | undefined;
  className: string;
  trans: TranslationBundle;
}): JSX.Element | null {
  const { model, me, owner, trans } = props;
  if (!me?.team || !owner) {
    return null;
  }
  const mine = model.isMine(owner);
  return (
    <span
      className={`${props.className} jp-mlp-Owner`}
      data-mine={mine ? 'true' : undefined}
      title={
        mine ? trans.__('Owner: %1 (you)', owner) : trans.__('Owner: %1', owner)
      }
    >
      {owner}
    </span>
  );
}

const PinnedRuns = React.memo(function PinnedRuns(props: {
  model: PipelineModel;
  me: IMe | null;
  pinned: readonly IRun[] | null;
  error: string | null;
  trans: TranslationBundle;
  onAdd: (run: IRun, index: number) => void;
}): JSX.Element {
  const { model, pinned, error, trans } = props;
  const added = React.useRef(0);
  return (
    <section
      className="jp-mlp-PipelinePalette"
      aria-label={trans.__('Pinned runs')}
    >
      <header className="jp-mlp-PipelineSection-header">
        <h3>{trans.__('Pinned runs')}</h3>
        <button
          className="jp-mlp-IconButton"
          title={trans.__('Refresh')}
          aria-label={trans.__('Refresh pinned runs')}
          onClick={() => void model.refreshPinned()}
        >
          <refreshIcon.react tag="span" />
        </button>
      </header>
      {error ? (
        <p className="jp-mlp-PipelineSection-note" role="alert">
          {trans.__('Could not load runs: %1', error)}
        </p>
      ) : pinned === null ? (
        <p className="jp-mlp-PipelineSection-note">{trans.__('Loading…')}</p>
      ) : !pinned.length ? (
        <p className="jp-mlp-PipelineSection-note">
          {trans.__(
            'No pinned runs. Pin a run that worked to use it as a stage.'
          )}
        </p>
      ) : (
        <ul className="jp-mlp-PipelinePalette-list">
          {pinned.map(run => (
            <li
              key={run.id}
              className="jp-mlp-PipelinePalette-run"
              draggable
              data-run={run.id}
              title={trans.__('Drag onto the canvas to add a stage')}
              onDragStart={event => {
                event.dataTransfer.setData(
                  RUN_MIME,
                  JSON.stringify({ id: run.id, name: run.name })
                );
                event.dataTransfer.setData('text/plain', run.id);
                event.dataTransfer.effectAllowed = 'copy';
              }}
            >
              <span className="jp-mlp-PipelinePalette-name">{run.name}</span>
              <button
                className="jp-mlp-IconButton"
                aria-label={trans.__('Add %1 as a stage', run.name)}
                title={trans.__('Add as a stage')}
                onClick={() => props.onAdd(run, added.current++)}
              >
                +
              </button>
              <span className="jp-mlp-PipelinePalette-meta">
                <OwnerLabel
                  model={model}
                  me={props.me}
                  owner={run.owner}
                  className="jp-mlp-PipelinePalette-owner"
                  trans={trans}
                />
                {props.me?.team && run.owner ? ' · ' : ''}
                {run.notebook ? run.notebook.split('/').pop() : run.id}
              </span>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
});

function formatTime(seconds: number | null | undefined): string {
  return seconds ? new Date(seconds * 1000).toLocaleString() : '';
}

const History = React.memo(function History(props: {
  model: PipelineModel;
  me: IMe | null;
  history: readonly IPipelineRunSummary[] | null;
  error: string | null;
  shown: string | null;
  trans: TranslationBundle;
}): JSX.Element {
  const { model, history, error, shown, trans } = props;
  return (
    <section
      className="jp-mlp-PipelineHistory"
      aria-label={trans.__('Pipeline runs')}
    >
      <header className="jp-mlp-PipelineSection-header">
        <h3>{trans.__('Runs of this pipeline')}</h3>
        <button
          className="jp-mlp-IconButton"
          title={trans.__('Refresh')}
          aria-label={trans.__('Refresh pipeline runs')}
          onClick={() => void model.refreshHistory()}
        >
          <refreshIcon.react tag="span" />
        </button>
      </header>
      {error ? (
        <p className="jp-mlp-PipelineSection-note">{error}</p>
      ) : history === null ? (
        <p className="jp-mlp-PipelineSection-note">{trans.__('Loading…')}</p>
      ) : !history.length ? (
        <p className="jp-mlp-PipelineSection-note">
          {trans.__('Not run yet.')}
        </p>
      ) : (
        <ul className="jp-mlp-PipelineHistory-list">
          {history.map(run => (
            <li key={run.id}>
              <button
                className="jp-mlp-PipelineHistory-run"
                aria-pressed={run.id === shown}
                data-run={run.id}
                onClick={() =>
                  run.id === shown
                    ? model.closeRun()
                    : model.show(run.id, !FINAL_RUN_STATES.has(run.status))
                }
              >
                <span className="jp-mlp-PipelineHistory-time">
                  {formatTime(run.created_at ?? run.started_at)}
                </span>
                <span
                  className="jp-mlp-StageNode-state"
                  data-status={run.orphaned ? 'orphaned' : run.status}
                >
                  {stateLabel(trans, run.orphaned ? 'orphaned' : run.status)}
                </span>
                <span
                  className="jp-mlp-PipelineHistory-version"
                  title={trans.__(
                    'version (hash of the spec it ran) %1',
                    run.version ?? ''
                  )}
                >
                  {run.version ? trans.__('v %1', run.version.slice(0, 8)) : ''}
                </span>
                <span className="jp-mlp-PipelineHistory-id">{run.id}</span>
                <OwnerLabel
                  model={model}
                  me={props.me}
                  owner={run.owner}
                  className="jp-mlp-PipelineHistory-owner"
                  trans={trans}
                />
              </button>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
});

function RunBanner(props: {
  model: PipelineModel;
  state: IPipelineState;
  trans: TranslationBundle;
}): JSX.Element | null {
  const { model, state, trans } = props;
  const view = state.runView;
  if (!view) {
    return null;
  }
  const detail = view.detail;
  const spec = state.spec;
  const missing = detail
    ? Object.keys(detail.stages ?? {}).filter(s => !spec?.stages[s])
    : [];
  const differs =
    !!detail?.spec &&
    !!spec &&
    !jsonEqual(stripPositions(detail.spec), stripPositions(spec));
  return (
    <div className="jp-mlp-RunBanner" data-status={detail?.status ?? 'loading'}>
      <span>
        {detail
          ? trans.__(
              'Run %1: %2',
              view.id,
              stateLabel(trans, detail.orphaned ? 'orphaned' : detail.status)
            )
          : trans.__('Run %1: loading…', view.id)}
      </span>
      {detail?.orphaned ? (
        <span className="jp-mlp-RunBanner-note jp-mlp-RunBanner-orphaned">
          {trans.__(
            'The process that drove it is gone (its terminal was closed): nothing moves it on. Cancel ends it; `jupyter mlp pipeline run FILE --resume %1` goes on.',
            view.id
          )}
        </span>
      ) : null}
      <OwnerLabel
        model={model}
        me={state.me}
        owner={detail?.owner}
        className="jp-mlp-RunBanner-owner"
        trans={trans}
      />
      {detail?.version ? (
        <span className="jp-mlp-RunBanner-version">
          {trans.__('version %1', detail.version.slice(0, 8))}
        </span>
      ) : null}
      {view.error ? (
        <span className="jp-mlp-Field-error">{view.error}</span>
      ) : null}
      {differs ? (
        <span className="jp-mlp-RunBanner-note">
          {trans.__('It ran another version of this file.')}
          {missing.length
            ? ' ' + trans.__('Stages not in the file: %1.', missing.join(', '))
            : ''}
        </span>
      ) : null}
      <span className="jp-mlp-PipelineToolbar-spacer" />
      {differs && detail?.spec && !view.live ? (
        <button
          className="jp-mlp-Button"
          onClick={() => model.restoreSpec(detail.spec!)}
          title={trans.__(
            'Replace the canvas by the spec this run ran (undoable)'
          )}
        >
          {trans.__('Restore this version')}
        </button>
      ) : null}
      <button
        className="jp-mlp-Button"
        onClick={() => model.closeRun()}
        title={trans.__('Hide the run states')}
      >
        {trans.__('Close')}
      </button>
    </div>
  );
}

function stripPositions(spec: object): unknown {
  const s = spec as { stages?: Record<string, Record<string, unknown>> };
  const stages: Record<string, unknown> = {};
  for (const [name, stage] of Object.entries(s.stages ?? {})) {
    const { position: _position, ...rest } = stage;
    void _position;
    stages[name] = rest;
  }
  return { ...s, stages };
}
