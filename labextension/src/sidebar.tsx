import { ReactWidget } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { Message } from '@lumino/messaging';
import * as React from 'react';

import { sharedFeed } from './api';
import { RunsPanel } from './components/RunsPanel';
import { RunsModel } from './model/RunsModel';
import { SweepsListModel } from './model/SweepsListModel';

export interface IRunsSidebarOptions {
  model: RunsModel;
  trans: TranslationBundle;
  live: () => boolean;
  onOpen: (id: string) => void;
  onCompare: (ids: string[]) => void;
  /** Open a sweep's view (the sweeps section lists the newest sweeps). */
  onOpenSweep?: (id: string) => void;
}

/**
 * The left-area widget hosting the runs panel.
 *
 * The panel is mounted only while the sidebar is shown: a collapsed sidebar renders nothing, and
 * the model loads its first page when the panel first shows (the event feed keeps it current).
 * Below the runs, the newest sweeps (their own small model, following the feed while shown).
 */
export class RunsSidebar extends ReactWidget {
  constructor(private readonly _options: IRunsSidebarOptions) {
    super();
    this.addClass('jp-mlp-RunsSidebar');
    this._sweeps = new SweepsListModel(sharedFeed());
  }

  dispose(): void {
    this._sweeps.dispose();
    super.dispose();
  }

  protected render(): JSX.Element | null {
    const o = this._options;
    return this.isVisible ? (
      <RunsPanel
        model={o.model}
        trans={o.trans}
        live={o.live()}
        onOpen={o.onOpen}
        onCompare={o.onCompare}
        sweeps={this._sweeps}
        onOpenSweep={o.onOpenSweep}
      />
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

  private _sweeps: SweepsListModel;
}
