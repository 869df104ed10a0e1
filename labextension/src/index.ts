import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  ICommandPalette,
  InputDialog,
  Notification,
  ToolbarButton,
  WidgetTracker
} from '@jupyterlab/apputils';
import { DocumentRegistry } from '@jupyterlab/docregistry';
import {
  INotebookModel,
  INotebookTracker,
  NotebookActions,
  NotebookPanel
} from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import {
  ITranslator,
  nullTranslator,
  TranslationBundle
} from '@jupyterlab/translation';
import { ReadonlyPartialJSONObject } from '@lumino/coreutils';
import { ISignal, Signal } from '@lumino/signaling';

import {
  EventFeed,
  getNotebook,
  IRun,
  ISweep,
  NotebookWhich,
  sharedFeed
} from './api';
import { listSweeps } from './api/sweeps';
import { showRerunDialog } from './components/RerunDialog';
import { askRunChange } from './components/RunChangeDialogs';
import { pipelineIcon } from './icons';
import { Identity, sharedIdentity } from './model/Identity';
import { offersChange, RunChangeKind } from './model/runActions';
import { RunsModel } from './model/RunsModel';
import { pipelinePlugins } from './pipeline';
import { RunsSidebar } from './sidebar';
import { showSweepDialog, SweepWidget } from './sweeps';
import { DEFAULT_SETTINGS, IMlp, IMlpSettings } from './tokens';
import { CompareWidget, RunDetailWidget } from './widgets';

namespace CommandIDs {
  export const openRuns = 'jupyter-mlp:open-runs';
  export const renameRun = 'jupyter-mlp:rename-run';
  export const editRunTags = 'jupyter-mlp:edit-run-tags';
  export const editRunNotes = 'jupyter-mlp:edit-run-notes';
  export const pinRun = 'jupyter-mlp:pin-run';
  export const deleteRun = 'jupyter-mlp:delete-run';
  export const cancelRun = 'jupyter-mlp:cancel-run';
  export const refreshRuns = 'jupyter-mlp:refresh-runs';
  export const filterRuns = 'jupyter-mlp:filter-runs';
  export const openRun = 'jupyter-mlp:open-run';
  export const compareRuns = 'jupyter-mlp:compare-runs';
  export const rerun = 'jupyter-mlp:rerun';
  export const sweep = 'jupyter-mlp:sweep';
  export const openSweep = 'jupyter-mlp:open-sweep';
  export const openNotebook = 'jupyter-mlp:open-run-notebook';
  export const trackNotebook = 'jupyter-mlp:track-notebook';
}

/** The commands of the changes only a run's owner (or an admin) makes. */
const CHANGE_COMMANDS: Record<RunChangeKind, string> = {
  rename: CommandIDs.renameRun,
  tags: CommandIDs.editRunTags,
  notes: CommandIDs.editRunNotes,
  pin: CommandIDs.pinRun,
  delete: CommandIDs.deleteRun,
  cancel: CommandIDs.cancelRun
};

/** A row of the runs table (context menus on it act on its run). */
const RUN_ROW_SELECTOR = '.jp-mlp-RunTable-row';

const SIDEBAR_ID = 'jupyter-mlp-sidebar';
const PLUGIN_ID = 'jupyter-mlp:plugin';
/** Where snapshot notebooks are written to be opened (never over the user's notebook). */
const SNAPSHOT_DIR = 'mlp-snapshots';

function readSettings(
  settings: ISettingRegistry.ISettings | null
): IMlpSettings {
  if (!settings) {
    return DEFAULT_SETTINGS;
  }
  const get = <K extends keyof IMlpSettings>(key: K): IMlpSettings[K] =>
    (settings.get(key).composite as IMlpSettings[K] | undefined) ??
    DEFAULT_SETTINGS[key];
  return {
    defaultProject: String(get('defaultProject') ?? '').trim(),
    metricColumns: (get('metricColumns') ?? []).filter(
      c => typeof c === 'string' && c.trim()
    ),
    liveUpdates: get('liveUpdates') !== false,
    runScope: get('runScope') === 'mine' ? 'mine' : 'team'
  };
}

class MlpState implements IMlp {
  constructor(
    readonly feed: EventFeed,
    readonly runs: RunsModel,
    readonly identity: Identity,
    readonly trans: TranslationBundle,
    private _settings: IMlpSettings
  ) {}

  get settings(): IMlpSettings {
    return this._settings;
  }

  get settingsChanged(): ISignal<IMlp, IMlpSettings> {
    return this._settingsChanged;
  }

  update(settings: IMlpSettings): IMlpSettings {
    this._settings = settings;
    this._settingsChanged.emit(settings);
    return settings;
  }

  private _settingsChanged = new Signal<IMlp, IMlpSettings>(this);
}

/** The shared state: settings, the event feed and the runs model. */
const corePlugin: JupyterFrontEndPlugin<IMlp> = {
  id: PLUGIN_ID,
  description: 'jupyter-mlp settings, live event feed and runs model.',
  autoStart: true,
  provides: IMlp,
  optional: [ISettingRegistry, ITranslator],
  activate: async (
    _app: JupyterFrontEnd,
    registry: ISettingRegistry | null,
    translator: ITranslator | null
  ): Promise<IMlp> => {
    const trans = (translator ?? nullTranslator).load('jupyter_mlp');
    const feed = sharedFeed();
    const identity = sharedIdentity();
    // Who this user is decides what the views offer: known before any of them shows.
    const known = identity.load();
    let settings: ISettingRegistry.ISettings | null = null;
    try {
      settings = registry ? await registry.load(PLUGIN_ID) : null;
    } catch (error) {
      console.warn('jupyter-mlp: settings could not be loaded', error);
    }
    await known;
    const initial = readSettings(settings);
    const runs = new RunsModel({
      feed,
      project: initial.defaultProject,
      metricColumns: initial.metricColumns,
      identity,
      scope: initial.runScope
    });
    const mlp = new MlpState(feed, runs, identity, trans, initial);
    const apply = () => {
      const before = mlp.settings;
      const current = mlp.update(readSettings(settings));
      runs.setProject(current.defaultProject);
      runs.setMetricColumns(current.metricColumns);
      runs.setScope(current.runScope);
      runs.follow(current.liveUpdates);
      if (current.liveUpdates && !before.liveUpdates) {
        runs.refresh(); // events were missed while paused
      }
    };
    settings?.changed.connect(apply);
    // Mine / Team is kept like the other panel settings.
    runs.scopeChanged.connect((_, scope) => {
      if (settings && readSettings(settings).runScope !== scope) {
        void settings.set('runScope', scope).catch(error => {
          console.warn('jupyter-mlp: could not keep Mine / Team', error);
        });
      }
    });
    identity.changed.connect(() => runs.identityChanged());
    runs.follow(mlp.settings.liveUpdates);
    return mlp;
  }
};

/** The runs sidebar in the left area, with its palette commands. */
const sidebarPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-mlp:sidebar',
  description: 'The jupyter-mlp runs sidebar.',
  autoStart: true,
  requires: [IMlp],
  optional: [ICommandPalette, ILayoutRestorer],
  activate: (
    app: JupyterFrontEnd,
    mlp: IMlp,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null
  ): void => {
    const { trans, runs } = mlp;
    const sidebar = new RunsSidebar({
      model: runs,
      trans,
      live: () => mlp.settings.liveUpdates,
      onOpen: id => void app.commands.execute(CommandIDs.openRun, { id }),
      onCompare: ids =>
        void app.commands.execute(CommandIDs.compareRuns, { ids }),
      onOpenSweep: id => void app.commands.execute(CommandIDs.openSweep, { id })
    });
    sidebar.id = SIDEBAR_ID;
    sidebar.title.icon = pipelineIcon;
    sidebar.title.caption = trans.__('jupyter-mlp runs');
    app.shell.add(sidebar, 'left', { rank: 900 });
    restorer?.add(sidebar, SIDEBAR_ID);
    mlp.settingsChanged.connect(() => sidebar.update());

    app.commands.addCommand(CommandIDs.openRuns, {
      label: trans.__('Open jupyter-mlp Runs'),
      icon: pipelineIcon,
      execute: () => app.shell.activateById(SIDEBAR_ID)
    });
    app.commands.addCommand(CommandIDs.refreshRuns, {
      label: trans.__('Refresh jupyter-mlp Runs'),
      execute: () => runs.refresh()
    });
    app.commands.addCommand(CommandIDs.filterRuns, {
      label: trans.__('Filter jupyter-mlp Runs'),
      describedBy: {
        args: {
          type: 'object',
          properties: { filter: { type: 'string' } }
        }
      },
      execute: args => {
        runs.setFilter(String(args.filter ?? ''));
        app.shell.activateById(SIDEBAR_ID);
      }
    });
    const category = trans.__('jupyter-mlp');
    for (const command of [CommandIDs.openRuns, CommandIDs.refreshRuns]) {
      palette?.addItem({ command, category });
    }
  }
};

/** Run detail and compare views in the main area; the rerun dialog; snapshot notebooks. */
const viewsPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-mlp:views',
  description: 'jupyter-mlp run detail, compare and rerun.',
  autoStart: true,
  requires: [IMlp],
  optional: [ICommandPalette, ILayoutRestorer],
  activate: (
    app: JupyterFrontEnd,
    mlp: IMlp,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null
  ): void => {
    const { trans, feed, runs, identity } = mlp;
    const details = new WidgetTracker<RunDetailWidget>({
      namespace: 'jupyter-mlp-run'
    });
    const compares = new WidgetTracker<CompareWidget>({
      namespace: 'jupyter-mlp-compare'
    });
    const openRun = (id: string) =>
      void app.commands.execute(CommandIDs.openRun, { id });
    const actions = {
      rerun: (id: string) =>
        void app.commands.execute(CommandIDs.rerun, { id }),
      sweep: (id: string) =>
        void app.commands.execute(CommandIDs.sweep, { id }),
      openSweep: (id: string) =>
        void app.commands.execute(CommandIDs.openSweep, { id }),
      openRun,
      openNotebook: (id: string, which: NotebookWhich) =>
        void app.commands.execute(CommandIDs.openNotebook, { id, which }),
      showInPanel: (filter: string) =>
        void app.commands.execute(CommandIDs.filterRuns, { filter }),
      change: (kind: RunChangeKind, id: string) =>
        void app.commands.execute(CHANGE_COMMANDS[kind], {
          id,
          origin: 'detail'
        })
    };

    /**
     * The run a command acts on: its `id` argument, else the row a context menu was opened on,
     * else the run of the current detail view. `origin` is where it was started (its errors
     * are shown there): a detail view, or the runs panel.
     */
    const target = (
      args: ReadonlyPartialJSONObject
    ): { id: string; origin: 'detail' | 'panel' } | null => {
      if (args.id) {
        return {
          id: String(args.id),
          origin: args.origin === 'detail' ? 'detail' : 'panel'
        };
      }
      const row = app.contextMenuHitTest(node =>
        node.matches(RUN_ROW_SELECTOR)
      );
      if (row?.dataset.runId) {
        return { id: row.dataset.runId, origin: 'panel' };
      }
      const current = app.shell.currentWidget;
      if (current instanceof RunDetailWidget) {
        return { id: current.runId, origin: 'detail' };
      }
      return null;
    };
    /** The run as the panel or an open detail view has it (null: not loaded here). */
    const knownRun = (id: string): IRun | null =>
      details.find(w => w.runId === id)?.model.run ?? runs.getRun(id) ?? null;

    for (const [kind, command] of Object.entries(CHANGE_COMMANDS) as [
      RunChangeKind,
      string
    ][]) {
      // Hidden, not only disabled, where this user may not make the change (someone else's run).
      const offered = (args: ReadonlyPartialJSONObject) => {
        const t = target(args);
        return !!t && offersChange(identity, knownRun(t.id), kind);
      };
      app.commands.addCommand(command, {
        label: args => {
          const t = target(args);
          const pinned = t ? !!knownRun(t.id)?.pinned : false;
          return {
            rename: trans.__('Rename Run…'),
            tags: trans.__('Edit Run Tags…'),
            notes: trans.__('Edit Run Notes…'),
            pin: pinned ? trans.__('Unpin Run') : trans.__('Pin Run'),
            delete: trans.__('Delete Run…'),
            cancel: trans.__('Cancel Run')
          }[kind];
        },
        describedBy: {
          args: {
            type: 'object',
            properties: {
              id: { type: 'string' },
              origin: { type: 'string', enum: ['detail', 'panel'] }
            }
          }
        },
        isEnabled: offered,
        isVisible: offered,
        execute: async args => {
          const t = target(args);
          const run = t ? knownRun(t.id) : null;
          if (!t || !run) {
            return false;
          }
          const change = await askRunChange(kind, run, trans);
          if (!change) {
            return false;
          }
          const detail = details.find(w => w.runId === t.id);
          const ok =
            t.origin === 'detail' && detail
              ? await detail.model.change(change)
              : await runs.change(t.id, change);
          if (ok && kind === 'delete') {
            detail?.dispose();
          }
          return ok;
        }
      });
    }

    app.commands.addCommand(CommandIDs.openRun, {
      label: trans.__('Open Run'),
      describedBy: {
        args: {
          type: 'object',
          properties: { id: { type: 'string' } },
          required: ['id']
        }
      },
      execute: args => {
        const id = target(args)?.id ?? '';
        if (!id) {
          return;
        }
        let widget = details.find(w => w.runId === id);
        if (!widget) {
          widget = new RunDetailWidget({
            id,
            feed,
            actions,
            identity,
            trans
          });
          void details.add(widget);
          app.shell.add(widget, 'main');
        }
        app.shell.activateById(widget.id);
        return widget;
      }
    });

    app.commands.addCommand(CommandIDs.compareRuns, {
      label: args =>
        args.ids
          ? trans.__('Compare Runs')
          : trans.__('Compare Selected Runs (%1)', runs.selection.size),
      isEnabled: args =>
        Array.isArray(args.ids)
          ? args.ids.length >= 2
          : runs.selection.size >= 2,
      execute: args => {
        const ids = Array.isArray(args.ids)
          ? (args.ids as unknown[]).map(String)
          : [...runs.selection];
        if (ids.length < 2) {
          return;
        }
        const key = [...ids].sort().join(',');
        let widget = compares.find(w => [...w.runIds].sort().join(',') === key);
        if (!widget) {
          widget = new CompareWidget({
            ids,
            feed,
            openRun,
            identity,
            trans
          });
          void compares.add(widget);
          app.shell.add(widget, 'main');
        }
        app.shell.activateById(widget.id);
        return widget;
      }
    });

    /** A run's name for a dialog title: from the list, an open detail, else its id. */
    const runName = (id: string): string =>
      runs.getRun(id)?.name ??
      details.find(w => w.runId === id)?.title.label ??
      id;

    app.commands.addCommand(CommandIDs.rerun, {
      label: trans.__('Rerun…'),
      execute: async args => {
        const id = target(args)?.id ?? '';
        if (!id) {
          return;
        }
        const name = runName(id);
        const newId = await showRerunDialog({
          runId: id,
          runName: name,
          trans
        });
        if (newId) {
          app.shell.activateById(SIDEBAR_ID);
          Notification.success(trans.__('Rerun queued as run %1', newId), {
            autoClose: 5000,
            actions: [
              {
                label: trans.__('Open'),
                callback: () => openRun(newId)
              }
            ]
          });
        }
        return newId;
      }
    });

    const sweeps = new WidgetTracker<SweepWidget>({
      namespace: 'jupyter-mlp-sweep'
    });
    /** The palette's Open Sweep: pick one of the newest sweeps (or type an id). */
    const pickSweep = async (): Promise<string | null> => {
      let found: ISweep[] = [];
      try {
        found = await listSweeps(50);
      } catch {
        // no listing (an old server): the id is typed
      }
      if (!found.length) {
        const typed = await InputDialog.getText({
          title: trans.__('Open Sweep'),
          label: trans.__('No sweep listed. Sweep id (or its first digits)'),
          okLabel: trans.__('Open')
        });
        return typed.value?.trim() || null;
      }
      const label = (s: ISweep) =>
        `${s.name} · ${s.status} · ${s.objective?.text ?? ''} · ${s.id}`;
      const picked = await InputDialog.getItem({
        title: trans.__('Open Sweep'),
        items: found.map(label),
        okLabel: trans.__('Open')
      });
      return found.find(s => label(s) === picked.value)?.id ?? null;
    };

    app.commands.addCommand(CommandIDs.openSweep, {
      label: trans.__('Open Sweep'),
      describedBy: {
        args: {
          type: 'object',
          properties: { id: { type: 'string' } }
        }
      },
      execute: async args => {
        let id = String(args.id ?? '').trim();
        if (!id) {
          id = (await pickSweep()) ?? '';
        }
        if (!id) {
          return;
        }
        let widget = sweeps.find(w => w.sweepId === id);
        if (!widget) {
          widget = new SweepWidget({ id, openRun, identity, trans });
          void sweeps.add(widget);
          app.shell.add(widget, 'main');
        }
        app.shell.activateById(widget.id);
        return widget;
      }
    });

    app.commands.addCommand(CommandIDs.sweep, {
      label: trans.__('Sweep…'),
      execute: async args => {
        const id = target(args)?.id ?? '';
        if (!id) {
          return;
        }
        const name = runName(id);
        const sweepId = await showSweepDialog({
          runId: id,
          runName: name,
          trans
        });
        if (sweepId) {
          await app.commands.execute(CommandIDs.openSweep, { id: sweepId });
        }
        return sweepId;
      }
    });

    app.commands.addCommand(CommandIDs.openNotebook, {
      label: args =>
        args.which === 'output'
          ? trans.__('Open Executed Notebook')
          : trans.__('Open Snapshot Notebook'),
      execute: async args => {
        const id = String(args.id ?? '');
        const which =
          (String(args.which ?? 'start') as NotebookWhich) || 'start';
        try {
          const content = await getNotebook(id, which);
          const contents = app.serviceManager.contents;
          await contents.save(SNAPSHOT_DIR, { type: 'directory' });
          const path = `${SNAPSHOT_DIR}/${id}-${which}.ipynb`;
          await contents.save(path, {
            type: 'notebook',
            format: 'json',
            content
          });
          return app.commands.execute('docmanager:open', { path });
        } catch (error) {
          Notification.error(
            trans.__(
              'Could not open the notebook of run %1: %2',
              id,
              error instanceof Error ? error.message : String(error)
            )
          );
        }
      }
    });

    palette?.addItem({
      command: CommandIDs.compareRuns,
      category: trans.__('jupyter-mlp')
    });
    palette?.addItem({
      command: CommandIDs.openSweep,
      category: trans.__('jupyter-mlp')
    });
    runs.changed.connect(() =>
      app.commands.notifyCommandChanged(CommandIDs.compareRuns)
    );
    identity.changed.connect(() => app.commands.notifyCommandChanged());

    // A run's row: what anyone may do with it, then its owner's (hidden for others' runs).
    const menuItems: [string, number][] = [
      [CommandIDs.openRun, 0],
      [CommandIDs.rerun, 1],
      [CommandIDs.sweep, 2],
      [CommandIDs.compareRuns, 3],
      [CommandIDs.pinRun, 10],
      [CommandIDs.renameRun, 11],
      [CommandIDs.editRunTags, 12],
      [CommandIDs.editRunNotes, 13],
      [CommandIDs.cancelRun, 14],
      [CommandIDs.deleteRun, 15]
    ];
    app.contextMenu.addItem({
      type: 'separator',
      selector: RUN_ROW_SELECTOR,
      rank: 105
    });
    for (const [command, rank] of menuItems) {
      app.contextMenu.addItem({
        command,
        selector: RUN_ROW_SELECTOR,
        rank: 100 + rank
      });
    }

    if (restorer) {
      void restorer.restore(details, {
        command: CommandIDs.openRun,
        args: w => ({ id: w.runId }),
        name: w => w.runId
      });
      void restorer.restore(sweeps, {
        command: CommandIDs.openSweep,
        args: w => ({ id: w.sweepId }),
        name: w => w.sweepId
      });
      void restorer.restore(compares, {
        command: CommandIDs.compareRuns,
        args: w => ({ ids: w.runIds }),
        name: w => w.runIds.join(',')
      });
    }
  }
};

/** The code "Track this notebook" puts at the top of a notebook. */
export function trackSource(project: string): string {
  const magic = /^[\w.-]+$/.test(project)
    ? `%mlp_track --project ${project}`
    : '%mlp_track';
  return `%load_ext jupyter_mlp\n${magic}`;
}

/** Insert the two tracking lines at the top of a notebook (once) and run them. */
async function trackNotebook(
  panel: NotebookPanel,
  project: string
): Promise<void> {
  await panel.context.ready;
  const notebook = panel.content;
  const first = notebook.widgets[0];
  const already =
    first?.model.type === 'code' &&
    first.model.sharedModel.getSource().includes('%mlp_track');
  notebook.activeCellIndex = 0;
  if (!already) {
    if (first) {
      NotebookActions.insertAbove(notebook);
    }
    NotebookActions.changeCellType(notebook, 'code');
    notebook.activeCell?.model.sharedModel.setSource(trackSource(project));
  }
  notebook.deselectAll();
  await NotebookActions.run(notebook, panel.sessionContext);
}

/** "Track this notebook": a palette command and a notebook toolbar button. */
const trackPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-mlp:track',
  description: 'Track the active notebook with jupyter-mlp.',
  autoStart: true,
  requires: [IMlp],
  optional: [INotebookTracker, ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    mlp: IMlp,
    notebooks: INotebookTracker | null,
    palette: ICommandPalette | null
  ): void => {
    const { trans } = mlp;
    const track = (panel: NotebookPanel) =>
      trackNotebook(panel, mlp.settings.defaultProject);
    app.commands.addCommand(CommandIDs.trackNotebook, {
      label: trans.__('Track This Notebook'),
      caption: trans.__(
        'Insert %load_ext jupyter_mlp and %mlp_track at the top of the notebook and run them'
      ),
      icon: pipelineIcon,
      isEnabled: () => !!notebooks?.currentWidget,
      execute: () => {
        const panel = notebooks?.currentWidget;
        return panel ? track(panel) : undefined;
      }
    });
    palette?.addItem({
      command: CommandIDs.trackNotebook,
      category: trans.__('jupyter-mlp')
    });
    notebooks?.currentChanged.connect(() =>
      app.commands.notifyCommandChanged(CommandIDs.trackNotebook)
    );

    app.docRegistry.addWidgetExtension('Notebook', {
      createNew: (
        panel: NotebookPanel,
        _context: DocumentRegistry.IContext<INotebookModel>
      ) => {
        const button = new ToolbarButton({
          className: 'jp-mlp-TrackButton',
          icon: pipelineIcon,
          label: trans.__('Track'),
          tooltip: trans.__('Track this notebook with jupyter-mlp'),
          onClick: () => void track(panel)
        });
        panel.toolbar.insertItem(10, 'jupyter-mlp-track', button);
        return button;
      }
    });
  }
};

export default [
  corePlugin,
  sidebarPlugin,
  viewsPlugin,
  trackPlugin,
  ...pipelinePlugins
];
