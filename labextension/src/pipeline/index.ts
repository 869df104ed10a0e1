/**
 * The pipeline editor plugin: the `.mlpipe` file type, its document widget factory (the default
 * viewer), File > New > Pipeline, a launcher item and a palette command.
 */
import '@xyflow/react/dist/base.css';

import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette, WidgetTracker } from '@jupyterlab/apputils';
import { PathExt } from '@jupyterlab/coreutils';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { ILauncher } from '@jupyterlab/launcher';
import { IMainMenu } from '@jupyterlab/mainmenu';
import { Contents } from '@jupyterlab/services';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';

import { pipelineIcon } from '../icons';
import { emptySpec, serializeSpec } from './spec';
import { PipelineDocument, PipelineFactory } from './widget';

export const FACTORY = 'jupyter-mlp Pipeline Editor';
export const FILE_TYPE = 'jupyter-mlp-pipeline';
export const MIME_TYPE = 'application/json';

namespace CommandIDs {
  export const newPipeline = 'jupyter-mlp:new-pipeline';
  export const undo = 'jupyter-mlp:pipeline-undo';
  export const redo = 'jupyter-mlp:pipeline-redo';
  /** The runs UI's command (issue 7); used only when registered. */
  export const openRun = 'jupyter-mlp:open-run';
}

const pipelineEditorPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-mlp:pipeline-editor',
  description: 'The jupyter-mlp pipeline editor for .mlpipe files.',
  autoStart: true,
  optional: [
    ITranslator,
    IMainMenu,
    ILauncher,
    ICommandPalette,
    IDefaultFileBrowser,
    ILayoutRestorer
  ],
  activate: (
    app: JupyterFrontEnd,
    translator: ITranslator | null,
    mainMenu: IMainMenu | null,
    launcher: ILauncher | null,
    palette: ICommandPalette | null,
    browser: IDefaultFileBrowser | null,
    restorer: ILayoutRestorer | null
  ): void => {
    const trans = (translator ?? nullTranslator).load('jupyter_mlp');

    app.docRegistry.addFileType({
      name: FILE_TYPE,
      displayName: trans.__('Pipeline'),
      extensions: ['.mlpipe'],
      mimeTypes: [MIME_TYPE],
      fileFormat: 'text',
      contentType: 'file',
      icon: pipelineIcon
    });

    const openRun = (id: string): boolean => {
      if (!app.commands.hasCommand(CommandIDs.openRun)) {
        return false;
      }
      void app.commands.execute(CommandIDs.openRun, { id });
      return true;
    };
    const factory = new PipelineFactory({
      name: FACTORY,
      label: trans.__('Pipeline Editor'),
      fileTypes: [FILE_TYPE],
      defaultFor: [FILE_TYPE],
      modelName: 'text',
      translator: translator ?? nullTranslator,
      trans,
      openRun
    });
    app.docRegistry.addWidgetFactory(factory);

    const tracker = new WidgetTracker<PipelineDocument>({
      namespace: 'jupyter-mlp-pipeline'
    });
    factory.widgetCreated.connect((_, widget) => {
      widget.context.pathChanged.connect(() => void tracker.save(widget));
      void tracker.add(widget);
    });
    if (restorer) {
      void restorer.restore(tracker, {
        command: 'docmanager:open',
        args: widget => ({ path: widget.context.path, factory: FACTORY }),
        name: widget => widget.context.path
      });
    }

    app.commands.addCommand(CommandIDs.newPipeline, {
      label: args =>
        args.isPalette ? trans.__('New Pipeline') : trans.__('Pipeline'),
      caption: trans.__('Create a new jupyter-mlp pipeline (.mlpipe)'),
      icon: args => (args.isPalette ? undefined : pipelineIcon),
      execute: async args => {
        const cwd =
          (args.cwd as string | undefined) ?? browser?.model.path ?? '';
        const model = (await app.commands.execute('docmanager:new-untitled', {
          path: cwd,
          type: 'file',
          ext: '.mlpipe'
        })) as Contents.IModel | undefined;
        if (!model) {
          return;
        }
        const name = PathExt.basename(model.path, '.mlpipe');
        await app.serviceManager.contents.save(model.path, {
          type: 'file',
          format: 'text',
          content: serializeSpec(emptySpec(name))
        });
        return app.commands.execute('docmanager:open', {
          path: model.path,
          factory: FACTORY
        });
      }
    });
    mainMenu?.fileMenu.newMenu.addGroup(
      [{ command: CommandIDs.newPipeline }],
      30
    );

    // Edit > Undo / Redo act on the pipeline's own history when an editor is current.
    const current = () => {
      const widget = tracker.currentWidget;
      return widget && widget === app.shell.currentWidget
        ? widget.content.model
        : null;
    };
    app.commands.addCommand(CommandIDs.undo, {
      label: trans.__('Undo Pipeline Edit'),
      isEnabled: () => !!current()?.state.canUndo,
      execute: () => current()?.undo()
    });
    app.commands.addCommand(CommandIDs.redo, {
      label: trans.__('Redo Pipeline Edit'),
      isEnabled: () => !!current()?.state.canRedo,
      execute: () => current()?.redo()
    });
    mainMenu?.editMenu.undoers.undo.add({
      id: CommandIDs.undo,
      isEnabled: w => tracker.has(w)
    });
    mainMenu?.editMenu.undoers.redo.add({
      id: CommandIDs.redo,
      isEnabled: w => tracker.has(w)
    });
    launcher?.add({
      command: CommandIDs.newPipeline,
      category: trans.__('Other'),
      rank: 10
    });
    palette?.addItem({
      command: CommandIDs.newPipeline,
      category: trans.__('jupyter-mlp'),
      args: { isPalette: true }
    });
  }
};

/** Every plugin of the pipeline editor (spread into the extension's default export). */
export const pipelinePlugins: JupyterFrontEndPlugin<void>[] = [
  pipelineEditorPlugin
];
