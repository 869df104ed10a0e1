/** The main-area widgets: a run's detail and the comparison of runs. */
import { MainAreaWidget, ReactWidget } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import * as React from 'react';

import { EventFeed } from './api';
import { CompareView } from './components/CompareView';
import { IRunDetailActions, RunDetail } from './components/RunDetail';
import { pipelineIcon } from './icons';
import { CompareModel } from './model/CompareModel';
import { Identity } from './model/Identity';
import { RunDetailModel } from './model/RunDetailModel';

class ModelView<M extends { dispose(): void }> extends ReactWidget {
  constructor(
    readonly model: M,
    private readonly _render: () => JSX.Element
  ) {
    super();
    this.addClass('jp-mlp-View');
  }

  protected render(): JSX.Element {
    return this._render();
  }

  dispose(): void {
    this.model.dispose();
    super.dispose();
  }
}

export class RunDetailWidget extends MainAreaWidget<ModelView<RunDetailModel>> {
  constructor(options: {
    id: string;
    feed: EventFeed | null;
    actions: IRunDetailActions;
    identity: Identity;
    trans: TranslationBundle;
  }) {
    const model = new RunDetailModel(
      options.id,
      options.feed,
      options.identity
    );
    const content = new ModelView(model, () => (
      <RunDetail
        model={model}
        actions={options.actions}
        trans={options.trans}
      />
    ));
    super({ content });
    this.runId = options.id;
    this.id = `jp-mlp-run-${options.id}`;
    this.addClass('jp-mlp-RunDetailWidget');
    this.title.icon = pipelineIcon;
    this.title.label = options.trans.__('Run %1', options.id.slice(0, 8));
    this.title.closable = true;
    model.changed.connect(() => {
      const run = model.run;
      if (run) {
        // Lumino renders titles as text.
        this.title.label = run.name || run.id;
        this.title.caption = options.trans.__('Run %1 (%2)', run.name, run.id);
      }
    });
    void model.load();
  }

  readonly runId: string;

  /** The view's state (the run, and where its actions' errors are shown). */
  get model(): RunDetailModel {
    return this.content.model;
  }
}

export class CompareWidget extends MainAreaWidget<ModelView<CompareModel>> {
  constructor(options: {
    ids: string[];
    feed: EventFeed | null;
    openRun: (id: string) => void;
    identity: Identity;
    trans: TranslationBundle;
  }) {
    const model = new CompareModel(options.ids, options.feed, options.identity);
    const content = new ModelView(model, () => (
      <CompareView
        model={model}
        trans={options.trans}
        openRun={options.openRun}
      />
    ));
    super({ content });
    this.runIds = options.ids;
    this.id = `jp-mlp-compare-${options.ids.join('-')}`;
    this.addClass('jp-mlp-CompareWidget');
    this.title.icon = pipelineIcon;
    this.title.label = options.trans.__('Compare %1 runs', options.ids.length);
    this.title.closable = true;
    void model.load();
  }

  readonly runIds: string[];
}
