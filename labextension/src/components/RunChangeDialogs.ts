/**
 * What a change of a run needs to know first, asked in JupyterLab's dialogs: the new name, the
 * tags, the notes, or whether to delete it. Cancel and Pin ask nothing.
 */
import { Dialog, InputDialog, showDialog } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { IRun } from '../api';
import { parseTags, RunChange, RunChangeKind } from '../model/runActions';

/** A dialog body with a textarea (notes run over lines). */
class NotesBody extends Widget implements Dialog.IBodyWidget<string> {
  constructor(text: string, label: string) {
    super();
    this.addClass('jp-mlp-NotesDialog');
    this._area = document.createElement('textarea');
    this._area.className = 'jp-mlp-NotesDialog-text';
    this._area.rows = 6;
    this._area.value = text;
    this._area.setAttribute('aria-label', label);
    this.node.appendChild(this._area);
  }

  getValue(): string {
    return this._area.value;
  }

  protected onAfterAttach(): void {
    this._area.focus();
  }

  private _area: HTMLTextAreaElement;
}

/** Ask what the change is (null: the user cancelled, or there is nothing to change). */
export async function askRunChange(
  kind: RunChangeKind,
  run: IRun,
  trans: TranslationBundle
): Promise<RunChange | null> {
  const name = run.name || run.id;
  switch (kind) {
    case 'pin':
      return { kind, pinned: !run.pinned };
    case 'cancel':
      return { kind };
    case 'rename': {
      const result = await InputDialog.getText({
        title: trans.__('Rename run %1', name),
        label: trans.__('New name'),
        text: run.name,
        okLabel: trans.__('Rename')
      });
      const value = result.value?.trim();
      return result.button.accept && value && value !== run.name
        ? { kind, name: value }
        : null;
    }
    case 'tags': {
      const result = await InputDialog.getText({
        title: trans.__('Tags of run %1', name),
        label: trans.__('Tags, separated by commas'),
        text: (run.tags ?? []).join(', '),
        okLabel: trans.__('Save')
      });
      return result.button.accept && result.value !== null
        ? { kind, tags: parseTags(result.value) }
        : null;
    }
    case 'notes': {
      const result = await showDialog({
        title: trans.__('Notes of run %1', name),
        body: new NotesBody(run.notes ?? '', trans.__('Notes')),
        buttons: [
          Dialog.cancelButton(),
          Dialog.okButton({ label: trans.__('Save') })
        ]
      });
      return result.button.accept && result.value !== null
        ? { kind, notes: result.value }
        : null;
    }
    case 'delete': {
      const result = await showDialog({
        title: trans.__('Delete run %1?', name),
        body: trans.__(
          'Its metrics, cells, outputs and the files only it references go too. This cannot be undone.'
        ),
        buttons: [
          Dialog.cancelButton(),
          Dialog.warnButton({ label: trans.__('Delete') })
        ]
      });
      return result.button.accept ? { kind } : null;
    }
  }
}
