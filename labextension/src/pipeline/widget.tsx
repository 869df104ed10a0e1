import { ReactWidget } from '@jupyterlab/apputils';
import {
  ABCWidgetFactory,
  DocumentRegistry,
  DocumentWidget
} from '@jupyterlab/docregistry';
import { TranslationBundle } from '@jupyterlab/translation';
import { Message } from '@lumino/messaging';
import * as React from 'react';

import { sharedFeed } from '../api';
import { sharedIdentity } from '../model/Identity';
import { pipelineIcon } from '../icons';
import { PipelineModel } from './model';
import { PipelineEditor } from './PipelineEditor';

/** The editor's content: renders the canvas only while shown (React Flow needs a real box). */
export class PipelineEditorPanel extends ReactWidget {
  constructor(
    readonly model: PipelineModel,
    private readonly _trans: TranslationBundle
  ) {
    super();
    this.addClass('jp-mlp-PipelinePanel');
  }

  protected render(): JSX.Element {
    return (
      <PipelineEditor
        model={this.model}
        trans={this._trans}
        visible={this.isVisible}
      />
    );
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this.update();
  }

  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    this.update();
  }

  protected onActivateRequest(msg: Message): void {
    super.onActivateRequest(msg);
    const canvas = this.node.querySelector<HTMLElement>(
      '.jp-mlp-PipelineCanvas'
    );
    (canvas ?? this.node).focus({ preventScroll: true });
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this.model.dispose();
    super.dispose();
  }
}

export class PipelineDocument extends DocumentWidget<PipelineEditorPanel> {}

export namespace PipelineFactory {
  export interface IOptions extends DocumentRegistry.IWidgetFactoryOptions<PipelineDocument> {
    trans: TranslationBundle;
    openRun: (id: string) => boolean;
  }
}

/** Opens `.mlpipe` files in the pipeline editor. */
export class PipelineFactory extends ABCWidgetFactory<
  PipelineDocument,
  DocumentRegistry.IModel
> {
  constructor(options: PipelineFactory.IOptions) {
    super(options);
    this._trans = options.trans;
    this._openRun = options.openRun;
  }

  protected createNewWidget(
    context: DocumentRegistry.Context
  ): PipelineDocument {
    const model = new PipelineModel({
      context,
      openRun: this._openRun,
      feed: sharedFeed(),
      identity: sharedIdentity()
    });
    const content = new PipelineEditorPanel(model, this._trans);
    const widget = new PipelineDocument({ content, context });
    widget.addClass('jp-mlp-PipelineDocument');
    widget.title.icon = pipelineIcon;
    return widget;
  }

  private _trans: TranslationBundle;
  private _openRun: (id: string) => boolean;
}
