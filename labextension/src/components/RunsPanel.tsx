import { TranslationBundle } from '@jupyterlab/translation';
import { Button, refreshIcon } from '@jupyterlab/ui-components';
import * as React from 'react';

import { IRun } from '../api';

export interface IRunsPanelProps {
  /** Fetch the runs to list; called on mount and on each refresh. */
  loadRuns: () => Promise<IRun[]>;
  trans: TranslationBundle;
}

type LoadState =
  | { kind: 'loading' }
  | { kind: 'loaded'; runs: IRun[] }
  | { kind: 'failed'; message: string };

/** The runs sidebar: a heading, a refresh button and the list of runs (or why it failed). */
export function RunsPanel({ loadRuns, trans }: IRunsPanelProps): JSX.Element {
  const [state, setState] = React.useState<LoadState>({ kind: 'loading' });

  const refresh = React.useCallback(() => {
    setState({ kind: 'loading' });
    loadRuns().then(
      runs => setState({ kind: 'loaded', runs }),
      (error: unknown) =>
        setState({
          kind: 'failed',
          message: error instanceof Error ? error.message : String(error)
        })
    );
  }, [loadRuns]);

  React.useEffect(refresh, [refresh]);

  return (
    <div className="jp-mlp-RunsPanel">
      <header className="jp-mlp-RunsPanel-header">
        <h2 className="jp-mlp-RunsPanel-title">{trans.__('Runs')}</h2>
        <Button
          minimal
          small
          className="jp-mlp-RunsPanel-refresh"
          title={trans.__('Refresh runs')}
          aria-label={trans.__('Refresh runs')}
          disabled={state.kind === 'loading'}
          onClick={refresh}
        >
          <refreshIcon.react tag="span" />
        </Button>
      </header>
      <RunsBody state={state} trans={trans} />
    </div>
  );
}

function RunsBody({
  state,
  trans
}: {
  state: LoadState;
  trans: TranslationBundle;
}): JSX.Element {
  switch (state.kind) {
    case 'loading':
      return (
        <p className="jp-mlp-RunsPanel-note">{trans.__('Loading runs…')}</p>
      );
    case 'failed':
      return (
        <p className="jp-mlp-RunsPanel-error" role="alert">
          {trans.__('Could not load runs: %1', state.message)}
        </p>
      );
    case 'loaded':
      if (state.runs.length === 0) {
        return (
          <p className="jp-mlp-RunsPanel-note">{trans.__('No runs yet.')}</p>
        );
      }
      return (
        <ul className="jp-mlp-RunsPanel-list">
          {state.runs.map(run => (
            <li key={run.id} className="jp-mlp-RunsPanel-run">
              <span className="jp-mlp-RunsPanel-name" title={run.name}>
                {run.name}
              </span>
              <span
                className="jp-mlp-RunsPanel-status"
                data-status={run.status}
              >
                {run.status}
              </span>
              <code className="jp-mlp-RunsPanel-id">{run.id}</code>
            </li>
          ))}
        </ul>
      );
  }
}
