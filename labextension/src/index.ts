import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';

import { pipelineIcon } from './icons';
import { RunsSidebar } from './sidebar';

namespace CommandIDs {
  export const openRuns = 'jupyter-mlp:open-runs';
}

const SIDEBAR_ID = 'jupyter-mlp-sidebar';

/** The runs sidebar in the left area and the palette command that opens it. */
const sidebarPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-mlp:sidebar',
  description: 'The jupyter-mlp runs sidebar.',
  autoStart: true,
  optional: [ICommandPalette, ILayoutRestorer, ITranslator],
  activate: (
    app: JupyterFrontEnd,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null,
    translator: ITranslator | null
  ): void => {
    const trans = (translator ?? nullTranslator).load('jupyter_mlp');

    const sidebar = new RunsSidebar(trans);
    sidebar.id = SIDEBAR_ID;
    sidebar.title.icon = pipelineIcon;
    sidebar.title.caption = trans.__('jupyter-mlp runs');
    app.shell.add(sidebar, 'left', { rank: 900 });
    restorer?.add(sidebar, SIDEBAR_ID);

    app.commands.addCommand(CommandIDs.openRuns, {
      label: trans.__('Open jupyter-mlp Runs'),
      icon: pipelineIcon,
      execute: () => app.shell.activateById(SIDEBAR_ID)
    });
    palette?.addItem({
      command: CommandIDs.openRuns,
      category: trans.__('jupyter-mlp')
    });
  }
};

export default [sidebarPlugin];
