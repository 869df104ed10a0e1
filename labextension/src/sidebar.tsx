import { ReactWidget } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { Message } from '@lumino/messaging';
import * as React from 'react';

import { listRuns } from './api';
import { RunsPanel } from './components/RunsPanel';

const loadRuns = async () => (await listRuns()).runs;

/**
 * The left-area widget hosting the runs panel.
 *
 * The panel is mounted only while the sidebar is shown, so opening the sidebar loads fresh runs
 * and a collapsed sidebar makes no requests.
 */
export class RunsSidebar extends ReactWidget {
  constructor(private readonly _trans: TranslationBundle) {
    super();
    this.addClass('jp-mlp-RunsSidebar');
  }

  protected render(): JSX.Element | null {
    return this.isVisible ? (
      <RunsPanel loadRuns={loadRuns} trans={this._trans} />
    ) : null;
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this.update();
  }

  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    this.update();
  }
}
