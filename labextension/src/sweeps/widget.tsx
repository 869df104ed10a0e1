/** The sweep view as a main-area widget (one per sweep), following the sweep while it runs. */
import { MainAreaWidget, ReactWidget } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import * as React from 'react';

import { pipelineIcon } from '../icons';
import { Identity } from '../model/Identity';
import { SweepModel } from './SweepModel';
import { SweepView } from './SweepView';

class SweepContent extends ReactWidget {
  constructor(
    readonly model: SweepModel,
    private readonly _openRun: (id: string) => void,
    private readonly _trans: TranslationBundle
  ) {
    super();
    this.addClass('jp-mlp-View');
    this.addClass('jp-mlp-SweepContent');
  }

  protected render(): JSX.Element {
    return (
      <SweepView
        model={this.model}
        openRun={this._openRun}
        trans={this._trans}
      />
    );
  }

  dispose(): void {
    this.model.dispose();
    super.dispose();
  }
}

export class SweepWidget extends MainAreaWidget<SweepContent> {
  constructor(options: {
    id: string;
    openRun: (id: string) => void;
    identity: Identity;
    trans: TranslationBundle;
  }) {
    const model = new SweepModel(options.id, options.identity);
    super({ content: new SweepContent(model, options.openRun, options.trans) });
    this.sweepId = options.id;
    this.id = `jp-mlp-sweep-${options.id}`;
    this.addClass('jp-mlp-SweepWidget');
    this.title.icon = pipelineIcon;
    this.title.label = options.trans.__('Sweep %1', options.id.slice(0, 8));
    this.title.closable = true;
    model.changed.connect(() => {
      const sweep = model.sweep;
      if (sweep) {
        this.title.label = sweep.name || this.title.label;
        this.title.caption = options.trans.__(
          'Sweep %1 (%2): %3',
          sweep.name ?? '',
          sweep.id,
          sweep.status
        );
      }
    });
    model.load();
  }

  readonly sweepId: string;
}
