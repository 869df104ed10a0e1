import { ReactWidget } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { Message } from '@lumino/messaging';
import * as React from 'react';

import { RunsPanel } from './components/RunsPanel';
import { RunsModel } from './model/RunsModel';

export interface IRunsSidebarOptions {
  model: RunsModel;
  trans: TranslationBundle;
  live: () => boolean;
  onOpen: (id: string) => void;
  onCompare: (ids: string[]) => void;
}

/**
 * The left-area widget hosting the runs panel.
 *
 * The panel is mounted only while the sidebar is shown: a collapsed sidebar renders nothing, and
 * the model loads its first page when the panel first shows (the event feed keeps it current).
 */
export class RunsSidebar extends ReactWidget {
  constructor(private readonly _options: IRunsSidebarOptions) {
    super();
    this.addClass('jp-mlp-RunsSidebar');
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
}
