/**
 * The rerun form in a modal dialog: a field per parameter, typed as the run recorded it (numbers
 * refuse other text, bools are checkboxes, lists and dicts are checked JSON), the executor and the
 * GPUs. The dialog stays open when the server refuses, showing why.
 */
import { ReactWidget } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';
import * as React from 'react';

import { IExecutor } from '../api';
import {
  ExecutorFormModel,
  FieldError,
  IRerunField,
  RerunModel
} from '../model/RerunModel';
import { useSignal } from './hooks';

export interface IRerunFormProps {
  model: RerunModel;
  runName: string;
  trans: TranslationBundle;
  onDone: (newId: string | null) => void;
}

/** Why a field's text is refused, as a sentence (the Rerun and Run pipeline dialogs). */
export function fieldErrorText(
  error: FieldError,
  trans: TranslationBundle
): string {
  switch (error) {
    case 'not-int':
      return trans.__('Enter a whole number.');
    case 'too-large':
      return trans.__('This number is too large.');
    case 'not-finite':
      return trans.__('Enter a finite number.');
    case 'not-number':
      return trans.__('Enter a number.');
    case 'not-json':
      return trans.__('Enter valid JSON.');
    case 'not-list':
      return trans.__('Enter a JSON list, e.g. [1, 2].');
    case 'not-dict':
      return trans.__('Enter a JSON object, e.g. {"a": 1}.');
    case 'not-gpus':
      return trans.__('Enter a whole number of GPUs (0 or more).');
  }
}

export function RerunForm({
  model,
  runName,
  trans,
  onDone
}: IRerunFormProps): JSX.Element {
  useSignal(model.changed);
  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    const id = await model.submit();
    if (id) {
      onDone(id);
    }
  };
  const gpusError = model.gpusError;
  return (
    <form className="jp-mlp-Rerun" onSubmit={submit} noValidate>
      <div className="jp-Dialog-header jp-mlp-Rerun-header">
        <h2 className="jp-mlp-Rerun-title">{trans.__('Rerun %1', runName)}</h2>
      </div>
      <div className="jp-Dialog-body jp-mlp-Rerun-body">
        {model.loading && (
          <p className="jp-mlp-RunsPanel-note">
            {trans.__('Loading parameters…')}
          </p>
        )}
        {model.loadError && (
          <p className="jp-mlp-RunDetail-error" role="alert">
            {trans.__('Could not load the parameters: %1', model.loadError)}
          </p>
        )}
        {!model.loading && !model.loadError && model.fields.length === 0 && (
          <p className="jp-mlp-Empty">
            {trans.__('This run recorded no parameters: it reruns as it was.')}
          </p>
        )}
        {model.fields.length > 0 && (
          <ParamFieldset
            legend={trans.__('Parameters')}
            model={model}
            trans={trans}
          />
        )}
        <fieldset className="jp-mlp-Rerun-where">
          <legend>{trans.__('Where')}</legend>
          <ExecutorField model={model} trans={trans} />
          <label className="jp-mlp-RerunField">
            <span className="jp-mlp-RerunField-label">{trans.__('GPUs')}</span>
            <input
              className={`jp-mod-styled${gpusError ? ' jp-mod-error' : ''}`}
              name="gpus"
              inputMode="numeric"
              placeholder={trans.__('as the run had')}
              aria-invalid={gpusError ? 'true' : 'false'}
              value={model.gpus}
              onChange={e => model.setGpus(e.currentTarget.value)}
            />
          </label>
          {gpusError && (
            <p className="jp-mlp-RerunField-error" role="alert">
              {fieldErrorText(gpusError, trans)}
            </p>
          )}
        </fieldset>
        {model.submitError && (
          <p className="jp-mlp-RunDetail-error jp-mlp-Rerun-error" role="alert">
            {model.submitError}
          </p>
        )}
      </div>
      <DialogFooter
        onCancel={() => onDone(null)}
        submitClass="jp-mlp-Rerun-submit"
        disabled={!model.valid || model.submitting}
        label={model.submitting ? trans.__('Submitting…') : trans.__('Rerun')}
        trans={trans}
      />
    </form>
  );
}

/** A form dialog's buttons as JupyterLab lays them out: Cancel, then the accept button, right. */
export function DialogFooter(props: {
  onCancel: () => void;
  submitClass: string;
  disabled: boolean;
  label: string;
  trans: TranslationBundle;
}): JSX.Element {
  return (
    <div className="jp-Dialog-footer">
      <button
        type="button"
        className="jp-Dialog-button jp-mod-reject jp-mod-styled"
        onClick={props.onCancel}
      >
        <div className="jp-Dialog-buttonLabel">{props.trans.__('Cancel')}</div>
      </button>
      <button
        type="submit"
        className={`jp-Dialog-button jp-mod-accept jp-mod-styled ${props.submitClass}`}
        disabled={props.disabled}
      >
        <div className="jp-Dialog-buttonLabel">{props.label}</div>
      </button>
    </div>
  );
}

/**
 * The executor `<select>` of a form model that picks one (the Rerun, Sweep and Run pipeline
 * dialogs): the server's default when none is listed, an unavailable executor disabled with why
 * (and how to enable it) as its title and the select's; with `showLoad`, how many jobs each runs
 * and queues.
 */
export function ExecutorSelect({
  model,
  trans,
  id,
  showLoad = false
}: {
  model: ExecutorFormModel;
  trans: TranslationBundle;
  id?: string;
  showLoad?: boolean;
}): JSX.Element {
  const unavailable = model.executors
    .filter(ex => ex.available === false && ex.reason)
    .map(ex => trans.__('%1 cannot be chosen: %2.', ex.name, ex.reason ?? ''));
  return (
    <select
      id={id}
      className="jp-mod-styled"
      name="executor"
      title={unavailable.join('\n') || undefined}
      value={model.executor}
      onChange={e => model.setExecutor(e.currentTarget.value)}
    >
      {model.executors.length === 0 && (
        <option value="">{trans.__('default')}</option>
      )}
      {model.executors.map(ex => (
        <option
          key={ex.name}
          value={ex.name}
          disabled={ex.available === false}
          title={ex.reason ?? undefined}
        >
          {ex.name}
          {ex.available === false ? ' ' + trans.__('(unavailable)') : ''}
          {showLoad && typeof ex.running === 'number'
            ? ' ' +
              trans.__('(%1 running, %2 queued)', ex.running, ex.queued ?? 0)
            : ''}
        </option>
      ))}
    </select>
  );
}

/** The executor of the Rerun and Run pipeline dialogs: its select, with load, and its notes. */
export function ExecutorField({
  model,
  trans
}: {
  model: ExecutorFormModel;
  trans: TranslationBundle;
}): JSX.Element {
  return (
    <>
      <label className="jp-mlp-RerunField">
        <span className="jp-mlp-RerunField-label">{trans.__('Executor')}</span>
        <ExecutorSelect model={model} trans={trans} showLoad />
      </label>
      <ExecutorNotes
        executors={model.executors}
        error={model.executorsError}
        trans={trans}
      />
    </>
  );
}

/**
 * Why an executor that can be chosen may not start jobs at once (not connected), in a line each;
 * then, given `error`, that the executors could not be listed. Why one cannot be chosen at all is
 * no note: ExecutorSelect gives it as the title of its option and of the select.
 */
export function ExecutorNotes({
  executors,
  error,
  trans
}: {
  executors: readonly IExecutor[] | null;
  error?: string | null;
  trans: TranslationBundle;
}): JSX.Element | null {
  const notes = (executors ?? []).filter(
    e => e.reason && e.available !== false
  );
  if (!notes.length && !error) {
    return null;
  }
  return (
    <>
      {notes.length > 0 && (
        <ul className="jp-mlp-ExecutorNotes">
          {notes.map(e => (
            <li key={e.name} data-executor={e.name}>
              {trans.__(
                '%1: %2; its jobs wait until it is back.',
                e.name,
                e.reason ?? ''
              )}
            </li>
          ))}
        </ul>
      )}
      {error && (
        <p className="jp-mlp-Muted">
          {trans.__('Executors unavailable (%1); the default is used.', error)}
        </p>
      )}
    </>
  );
}

/**
 * A parameter's field, checked as it is typed, with why its text is refused below it (the Rerun
 * and Run pipeline dialogs).
 */
/** A form's parameter fields under one legend (the Rerun and Run pipeline dialogs). */
export function ParamFieldset({
  legend,
  model,
  trans
}: {
  legend: string;
  model: {
    readonly fields: readonly IRerunField[];
    setText(key: string, text: string): void;
  };
  trans: TranslationBundle;
}): JSX.Element {
  return (
    <fieldset className="jp-mlp-Rerun-params">
      <legend>{legend}</legend>
      {model.fields.map(field => (
        <ParamField key={field.key} field={field} model={model} trans={trans} />
      ))}
    </fieldset>
  );
}

export function ParamField({
  field,
  model,
  trans
}: {
  field: IRerunField;
  model: { setText(key: string, text: string): void };
  trans: TranslationBundle;
}): JSX.Element {
  const id = `jp-mlp-rerun-${field.key}`;
  const errorId = `${id}-error`;
  const common = {
    id,
    name: field.key,
    'aria-invalid': field.error ? ('true' as const) : ('false' as const),
    'aria-describedby': field.error ? errorId : undefined,
    'data-kind': field.kind
  };
  let input: JSX.Element;
  switch (field.kind) {
    case 'bool':
      input = (
        <input
          {...common}
          type="checkbox"
          checked={field.text === 'true'}
          onChange={e =>
            model.setText(field.key, e.currentTarget.checked ? 'true' : 'false')
          }
        />
      );
      break;
    case 'list':
    case 'dict':
    case 'json':
      input = (
        <textarea
          {...common}
          className={`jp-mod-styled jp-mlp-RerunField-json${field.error ? ' jp-mod-error' : ''}`}
          spellCheck={false}
          rows={Math.min(6, Math.max(1, Math.ceil(field.text.length / 48)))}
          value={field.text}
          onChange={e => model.setText(field.key, e.currentTarget.value)}
        />
      );
      break;
    default:
      input = (
        <input
          {...common}
          className={`jp-mod-styled${field.error ? ' jp-mod-error' : ''}`}
          type="text"
          inputMode={
            field.kind === 'int'
              ? 'numeric'
              : field.kind === 'float'
                ? 'decimal'
                : 'text'
          }
          spellCheck={false}
          value={field.text}
          onChange={e => model.setText(field.key, e.currentTarget.value)}
        />
      );
  }
  return (
    <div className="jp-mlp-RerunField" data-param={field.key}>
      <label className="jp-mlp-RerunField-label" htmlFor={id}>
        <code>{field.key}</code>{' '}
        <span className="jp-mlp-Muted">{field.type ?? trans.__('any')}</span>
      </label>
      {input}
      {field.error && (
        <p id={errorId} className="jp-mlp-RerunField-error" role="alert">
          {fieldErrorText(field.error, trans)}
        </p>
      )}
    </div>
  );
}

/**
 * Host a form in a modal dialog styled as JupyterLab's (the Rerun, Sweep and Run pipeline
 * dialogs): Escape closes it, the model loads, then the first field has the focus. Resolves with
 * what the form hands to `onDone` (a new id, a request), or null when cancelled.
 */
export function showFormDialog<T = string>(options: {
  model: { load(): Promise<unknown>; dispose(): void };
  label: string;
  className?: string;
  form: (onDone: (id: T | null) => void) => JSX.Element;
}): Promise<T | null> {
  const { model } = options;
  return new Promise(resolve => {
    const host = new Widget({ node: document.createElement('div') });
    host.addClass('jp-Dialog');
    host.addClass('jp-ThemedContainer');
    host.addClass('jp-mlp-RerunDialog');
    if (options.className) {
      host.addClass(options.className);
    }
    host.node.setAttribute('role', 'dialog');
    host.node.setAttribute('aria-modal', 'true');
    host.node.setAttribute('aria-label', options.label);
    const done = (id: T | null) => {
      document.removeEventListener('keydown', onKey, true);
      body.dispose();
      model.dispose();
      host.dispose();
      resolve(id);
    };
    const onKey = (event: KeyboardEvent) => {
      if (event.key === 'Escape') {
        event.stopPropagation();
        done(null);
      }
    };
    const body = ReactWidget.create(options.form(done));
    body.addClass('jp-Dialog-content');
    body.addClass('jp-mlp-RerunDialog-content');
    Widget.attach(host, document.body);
    Widget.attach(body, host.node);
    document.addEventListener('keydown', onKey, true);
    void model.load().then(() => {
      host.node.querySelector<HTMLElement>('input, textarea, select')?.focus();
    });
  });
}

/**
 * Show the rerun dialog for a run; resolves with the new run's id, or null when cancelled.
 */
export function showRerunDialog(options: {
  runId: string;
  runName: string;
  trans: TranslationBundle;
}): Promise<string | null> {
  const model = new RerunModel(options.runId);
  return showFormDialog({
    model,
    label: options.trans.__('Rerun %1', options.runName),
    form: onDone => (
      <RerunForm
        model={model}
        runName={options.runName}
        trans={options.trans}
        onDone={onDone}
      />
    )
  });
}
