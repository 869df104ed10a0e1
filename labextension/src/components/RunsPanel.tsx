import { TranslationBundle } from '@jupyterlab/translation';
import {
  Button,
  caretDownIcon,
  caretRightIcon,
  refreshIcon
} from '@jupyterlab/ui-components';
import * as React from 'react';

import { COMPARE_MAX } from '../api';
import {
  IFilterError,
  OPTIONAL_COLUMNS,
  OptionalColumn,
  RunScope,
  RunsModel
} from '../model/RunsModel';
import { Identity } from '../model/Identity';
import { endedTrials, SweepsListModel } from '../model/SweepsListModel';
import { formatMetric } from './format';
import { useSignal } from './hooks';
import { RunTable } from './RunTable';

export interface IRunsPanelProps {
  model: RunsModel;
  trans: TranslationBundle;
  /** Whether the event feed is on (settings: live updates). */
  live: boolean;
  onOpen: (id: string) => void;
  onCompare: (ids: string[]) => void;
  /** The sweeps section (none: not shown). */
  sweeps?: SweepsListModel;
  onOpenSweep?: (id: string) => void;
}

/**
 * The runs sidebar: a filter box (the server's filter errors are shown under it, pointing at the
 * position), the virtualized table, actions on the selected runs, and the newest sweeps.
 */
export function RunsPanel(props: IRunsPanelProps): JSX.Element {
  const { model, trans } = props;
  useSignal(model.changed);
  React.useEffect(() => model.start(), [model]);
  const selected = [...model.selection];

  return (
    <div className="jp-mlp-RunsPanel">
      <header className="jp-mlp-RunsPanel-header">
        <h2 className="jp-mlp-RunsPanel-title">{trans.__('Runs')}</h2>
        {model.project && (
          <span
            className="jp-mlp-RunsPanel-project"
            title={trans.__('Project')}
          >
            {model.project}
          </span>
        )}
        <span
          className="jp-mlp-RunsPanel-live"
          data-live={props.live ? 'on' : 'off'}
          title={
            props.live
              ? trans.__('Live: runs update as they change')
              : trans.__('Live updates are off (settings); refresh to update')
          }
        >
          {props.live ? trans.__('live') : trans.__('paused')}
        </span>
        <span className="jp-mlp-RunsPanel-spacer" />
        <Button
          small
          minimal
          className="jp-mlp-RunsPanel-compare"
          disabled={selected.length < 2 || selected.length > COMPARE_MAX}
          title={
            selected.length > COMPARE_MAX
              ? trans.__('Compare takes %1 runs at most', COMPARE_MAX)
              : trans.__('Compare the selected runs')
          }
          onClick={() => props.onCompare(selected)}
        >
          {selected.length >= 2
            ? trans.__('Compare (%1)', selected.length)
            : trans.__('Compare')}
        </Button>
        <ColumnsMenu model={model} trans={trans} />
        <Button
          minimal
          small
          className="jp-mlp-RunsPanel-refresh"
          title={trans.__('Refresh runs')}
          aria-label={trans.__('Refresh runs')}
          disabled={model.loading}
          onClick={() => model.refresh()}
        >
          <refreshIcon.react tag="span" />
        </Button>
      </header>
      <FilterBox model={model} trans={trans} />
      {model.actionError && (
        <p className="jp-mlp-RunsPanel-error" role="alert">
          {model.actionError}
        </p>
      )}
      <RunsBody {...props} />
      {props.sweeps && (
        <SweepsSection
          model={props.sweeps}
          identity={model.identity}
          live={props.live}
          trans={trans}
          onOpen={id => props.onOpenSweep?.(id)}
        />
      )}
      <footer className="jp-mlp-RunsPanel-footer">
        <RunsCount model={model} trans={trans} />
        <span className="jp-mlp-RunsPanel-spacer" />
        {model.rows.length > 1 && selected.length < model.rows.length && (
          <button
            className="jp-mlp-Link jp-mlp-RunsPanel-selectAll"
            title={trans.__('Select the runs listed (to compare them)')}
            onClick={() => {
              for (const run of model.rows) {
                model.toggleSelected(run.id, true);
              }
            }}
          >
            {trans.__('Select all %1', model.rows.length)}
          </button>
        )}
        {selected.length > 0 && (
          <button
            className="jp-mlp-Link"
            onClick={() => model.clearSelection()}
          >
            {trans.__('Clear selection (%1)', selected.length)}
          </button>
        )}
      </footer>
    </div>
  );
}

function FilterBox({
  model,
  trans
}: {
  model: RunsModel;
  trans: TranslationBundle;
}): JSX.Element {
  // The text lives here so that typing never waits for the model's (microtask) re-render.
  const [text, setText] = React.useState(model.filter);
  React.useEffect(() => {
    if (model.filter !== text) {
      setText(model.filter);
    }
  }, [model.filter]);
  const error = model.filterError;
  return (
    <div className="jp-mlp-Filter">
      <div className="jp-mlp-Filter-row">
        <ScopeToggle model={model} trans={trans} />
        <input
          className={`jp-mlp-Filter-input jp-InputGroup-input${error ? ' jp-mod-error' : ''}`}
          type="search"
          spellCheck={false}
          placeholder={trans.__(
            'Filter, e.g. metrics.acc > 0.9 and status = finished'
          )}
          aria-label={trans.__('Filter runs')}
          aria-invalid={error ? 'true' : 'false'}
          aria-describedby={error ? 'jp-mlp-filter-error' : undefined}
          value={text}
          onChange={e => {
            setText(e.currentTarget.value);
            model.setFilter(e.currentTarget.value);
          }}
        />
      </div>
      {error && <FilterError error={error} text={model.filter} trans={trans} />}
    </div>
  );
}

/** The server's message, and the filter again with a caret under the offending position. */
function FilterError({
  error,
  text,
  trans
}: {
  error: IFilterError;
  text: string;
  trans: TranslationBundle;
}): JSX.Element {
  const position = error.position;
  return (
    <div id="jp-mlp-filter-error" className="jp-mlp-Filter-error" role="alert">
      <span className="jp-mlp-Filter-message">
        {position === null
          ? error.message
          : trans.__('%1 (at character %2)', error.message, position + 1)}
      </span>
      {position !== null && (
        <pre className="jp-mlp-Filter-where" data-position={position}>
          {text}
          {'\n'}
          {' '.repeat(Math.min(position, text.length))}
          <span className="jp-mlp-Filter-caret">^</span>
        </pre>
      )}
    </div>
  );
}

function RunsCount({
  model,
  trans
}: {
  model: RunsModel;
  trans: TranslationBundle;
}): JSX.Element {
  const n = model.rows.length;
  let text = '';
  if (model.loaded && !model.loadError) {
    text = model.hasMore
      ? trans.__('%1+ runs', n)
      : trans._n('%1 run', '%1 runs', n);
    if (model.loadingMore) {
      text += ' ' + trans.__('(loading more…)');
    }
  }
  return <span className="jp-mlp-RunsPanel-count">{text}</span>;
}

function RunsBody(props: IRunsPanelProps): JSX.Element {
  const { model, trans } = props;
  if (model.loadError && !model.rows.length) {
    return (
      <p className="jp-mlp-RunsPanel-error" role="alert">
        {trans.__('Could not load runs: %1', model.loadError)}
      </p>
    );
  }
  if (!model.loaded) {
    return <p className="jp-mlp-RunsPanel-note">{trans.__('Loading runs…')}</p>;
  }
  if (model.rows.length === 0) {
    const filtered = !!model.appliedFilter.trim();
    return (
      <>
        <p className="jp-mlp-RunsPanel-note">
          {filtered
            ? model.appliedMine
              ? trans.__('None of your runs match this filter.')
              : trans.__('No runs match this filter.')
            : model.appliedMine
              ? trans.__('You have no runs yet (Team lists everyone’s).')
              : trans.__('No runs yet.')}
          <FieldHints model={model} trans={trans} afterText />
        </p>
        {!filtered && (
          <p className="jp-mlp-RunsPanel-note jp-mlp-RunsPanel-start">
            {trans.__('To record one, run')} <code>%load_ext jupyter_mlp</code>{' '}
            {trans.__('then')} <code>%mlp_track</code>{' '}
            {trans.__('in a notebook, or press Track in its toolbar.')}
          </p>
        )}
      </>
    );
  }
  const hints = model.hints;
  return (
    <>
      {hints.length > 0 && (
        <p className="jp-mlp-RunsPanel-note jp-mlp-RunsPanel-hints">
          <FieldHints model={model} trans={trans} />
        </p>
      )}
      <RunTable model={model} trans={trans} onOpen={props.onOpen} />
    </>
  );
}

/** A message as a sentence: the server's begin in lower case (`no run has …`). */
function sentence(message: string): string {
  return message.charAt(0).toUpperCase() + message.slice(1);
}

/**
 * The server's hints for the rows shown (a sort or filter field no run has), as text, each with
 * its suggestions as buttons that put the suggestion in place of the field. After a sentence
 * (`afterText`) one hint goes on the same line; several go one a line.
 */
function FieldHints({
  model,
  trans,
  afterText = false
}: {
  model: RunsModel;
  trans: TranslationBundle;
  afterText?: boolean;
}): JSX.Element | null {
  const hints = model.hints;
  if (!hints.length) {
    return null;
  }
  const before = (i: number) =>
    i > 0 || (afterText && hints.length > 1) ? <br /> : afterText ? ' ' : null;
  return (
    <>
      {hints.map((hint, i) => (
        <React.Fragment key={hint.field}>
          {before(i)}
          <span
            className="jp-mlp-Filter-hint"
            role="status"
            data-field={hint.field}
          >
            {sentence(hint.message)}
            {hint.suggestions.map(suggestion => (
              <React.Fragment key={suggestion}>
                {' '}
                <button
                  className="jp-mlp-Link jp-mlp-Filter-suggestion"
                  title={trans.__(
                    'Put %1 in place of %2 (filter and sort)',
                    suggestion,
                    hint.field
                  )}
                  onClick={() => model.applySuggestion(hint, suggestion)}
                >
                  {trans.__('Use %1', suggestion)}
                </button>
              </React.Fragment>
            ))}
          </span>
        </React.Fragment>
      ))}
    </>
  );
}

/**
 * Mine / Team, in a team's store, before the filter box (both say which runs are listed): this
 * user's runs only (the list asks for `owner = me` on top of the filter typed, which stays as
 * typed), or everyone's. Kept in the settings.
 */
function ScopeToggle({
  model,
  trans
}: {
  model: RunsModel;
  trans: TranslationBundle;
}): JSX.Element | null {
  const identity = model.identity;
  if (!identity?.team || !identity.me.name) {
    return null;
  }
  const options: [RunScope, string, string][] = [
    [
      'mine',
      trans.__('Mine'),
      trans.__('List only your runs (%1)', identity.me.name)
    ],
    ['team', trans.__('Team'), trans.__('List the runs of the whole team')]
  ];
  return (
    <div
      className="jp-mlp-ScopeToggle"
      role="group"
      aria-label={trans.__('Whose runs')}
    >
      {options.map(([scope, label, title]) => (
        <button
          key={scope}
          className="jp-mlp-ScopeToggle-option"
          data-scope={scope}
          aria-pressed={model.scope === scope}
          title={title}
          onClick={() => model.setScope(scope)}
        >
          {label}
        </button>
      ))}
    </div>
  );
}

/** Show or hide the optional columns of the table. */
function ColumnsMenu({
  model,
  trans
}: {
  model: RunsModel;
  trans: TranslationBundle;
}): JSX.Element {
  const labels: Record<OptionalColumn, string> = {
    owner: trans.__('Owner'),
    kind: trans.__('Kind'),
    stage: trans.__('Stage'),
    parent: trans.__('Parent'),
    cells: trans.__('Cells'),
    duration: trans.__('Time'),
    created: trans.__('Age')
  };
  return (
    <details className="jp-mlp-ColumnsMenu">
      <summary title={trans.__('Choose the columns')}>
        {trans.__('Columns')}
      </summary>
      <div className="jp-mlp-ColumnsMenu-list" role="group">
        {OPTIONAL_COLUMNS.map(id => (
          <label key={id}>
            <input
              type="checkbox"
              checked={model.isColumnShown(id)}
              onChange={e => model.toggleColumn(id, e.currentTarget.checked)}
            />
            {labels[id]}
          </label>
        ))}
      </div>
    </details>
  );
}

/**
 * The newest sweeps, folded or not: name, status, trials ended of the budget and the best
 * objective value; live (the feed's sweep events); a row opens the sweep's view.
 */
function SweepsSection({
  model,
  identity,
  live,
  trans,
  onOpen
}: {
  model: SweepsListModel;
  /** In a team's store each sweep names its owner. */
  identity: Identity | null;
  live: boolean;
  trans: TranslationBundle;
  onOpen: (id: string) => void;
}): JSX.Element | null {
  useSignal(model.changed);
  React.useEffect(() => model.start(live), [model, live]);
  const sweeps = model.sweeps;
  if (!model.available || !sweeps.length) {
    return null;
  }
  const open = model.open;
  const Caret = open ? caretDownIcon : caretRightIcon;
  return (
    <section className="jp-mlp-SweepsList" data-open={open ? 'true' : 'false'}>
      <h3 className="jp-mlp-SweepsList-heading">
        <button
          className="jp-mlp-SweepsList-toggle"
          aria-expanded={open}
          aria-controls="jp-mlp-sweeps-list"
          onClick={() => model.setOpen(!open)}
        >
          <Caret.react tag="span" className="jp-mlp-SweepsList-caret" />
          {trans.__('Sweeps')}
          <span className="jp-mlp-SweepsList-count">{sweeps.length}</span>
        </button>
      </h3>
      {open && (
        <ul
          id="jp-mlp-sweeps-list"
          className="jp-mlp-SweepsList-rows"
          aria-label={trans.__('Sweeps, newest first')}
        >
          {sweeps.map(s => {
            const c = s.counts ?? {};
            const name = s.name || trans.__('Sweep %1', s.id.slice(0, 8));
            const objective = s.objective?.text ?? '';
            return (
              <li key={s.id}>
                <button
                  className="jp-mlp-SweepsList-row"
                  data-sweep-id={s.id}
                  data-status={s.status}
                  title={trans.__('Open sweep %1 (%2)', name, s.id)}
                  onClick={() => onOpen(s.id)}
                >
                  <span className="jp-mlp-SweepsList-name">{name}</span>
                  <span className="jp-mlp-Status" data-status={s.status}>
                    {s.status}
                  </span>
                  <span className="jp-mlp-SweepsList-detail">
                    {identity?.team && s.owner && (
                      <>
                        <span
                          className="jp-mlp-SweepsList-owner jp-mlp-Owner"
                          data-mine={
                            identity.isMine(s.owner) ? 'true' : undefined
                          }
                          title={trans.__('Owner: %1', s.owner)}
                        >
                          {s.owner}
                        </span>
                        {' · '}
                      </>
                    )}
                    <span
                      className="jp-mlp-SweepsList-trials"
                      title={trans.__(
                        '%1 finished, %2 pruned, %3 failed, %4 running of %5 trials',
                        c.finished ?? 0,
                        c.pruned ?? 0,
                        (c.failed ?? 0) + (c.cancelled ?? 0),
                        c.running ?? 0,
                        s.budget
                      )}
                    >
                      {trans.__('%1/%2 trials', endedTrials(s), s.budget)}
                    </span>
                    {' · '}
                    <span
                      className="jp-mlp-SweepsList-best"
                      title={
                        s.best_value === null
                          ? trans.__('no best trial yet (%1)', objective)
                          : trans.__(
                              'best %1 at trial %2 (%3)',
                              formatMetric(s.best_value),
                              s.best_trial ?? '',
                              objective
                            )
                      }
                    >
                      {s.best_value === null
                        ? trans.__('no best yet')
                        : trans.__(
                            'best %1 %2',
                            s.objective?.key ?? '',
                            formatMetric(s.best_value)
                          )}
                    </span>
                  </span>
                </button>
              </li>
            );
          })}
        </ul>
      )}
    </section>
  );
}
