/**
 * The Run pipeline dialog, laid out and checked as the Rerun dialog: a field per pipeline
 * parameter (typed by its default, checked as it is typed, with the reason at the field and Run
 * disabled while one is refused), the executor, "ignore the cache".
 */
import { TranslationBundle } from '@jupyterlab/translation';
import * as React from 'react';

import {
  DialogFooter,
  ExecutorField,
  ParamFieldset,
  showFormDialog
} from '../components/RerunDialog';
import { useSignal } from '../components/hooks';
import {
  ExecutorFormModel,
  IRerunField,
  newField,
  parseField,
  withText
} from '../model/RerunModel';
import { JSONValue, parseLiteral, pythonType } from './spec';

export interface IRunRequest {
  params: Record<string, JSONValue>;
  executor: string | null;
  noCache: boolean;
}

/**
 * The form's state. A parameter is typed by its default; one whose default is unset (null, or
 * the '' a new parameter gets) takes any literal, read as the inspector reads defaults.
 */
export class RunFormModel extends ExecutorFormModel {
  constructor(params: Record<string, JSONValue>) {
    super();
    this._fields = Object.entries(params).map(([key, value]) =>
      newField(
        key,
        value === null || value === '' ? null : pythonType(value),
        value
      )
    );
  }

  get fields(): readonly IRerunField[] {
    return this._fields;
  }

  get noCache(): boolean {
    return this._noCache;
  }

  get valid(): boolean {
    return this._fields.every(f => f.error === null);
  }

  /** What the dialog hands back; null while a field is refused. */
  get request(): IRunRequest | null {
    if (!this.valid) {
      return null;
    }
    const params: Record<string, JSONValue> = {};
    for (const field of this._fields) {
      const parsed =
        field.type === null
          ? parseLiteral(field.text, null)
          : parseField(field.kind, field.text);
      if ('error' in parsed) {
        return null;
      }
      params[field.key] = parsed.value;
    }
    return {
      params,
      executor: this.executor || null,
      noCache: this._noCache
    };
  }

  async load(): Promise<void> {
    await this.executorChoices.load();
  }

  setText(key: string, text: string): void {
    this._fields = this._fields.map(f =>
      f.key === key ? withText(f, text) : f
    );
    this.emit();
  }

  setNoCache(noCache: boolean): void {
    this._noCache = noCache;
    this.emit();
  }

  private _fields: IRerunField[];
  private _noCache = false;
}

function RunForm({
  model,
  trans,
  onDone
}: {
  model: RunFormModel;
  trans: TranslationBundle;
  onDone: (request: IRunRequest | null) => void;
}): JSX.Element {
  useSignal(model.changed);
  const submit = (event: React.FormEvent) => {
    event.preventDefault();
    const request = model.request;
    if (request) {
      onDone(request);
    }
  };
  return (
    <form className="jp-mlp-Rerun jp-mlp-RunForm" onSubmit={submit} noValidate>
      <div className="jp-Dialog-header jp-mlp-Rerun-header">
        <h2 className="jp-mlp-Rerun-title">{trans.__('Run pipeline')}</h2>
      </div>
      <div className="jp-Dialog-body jp-mlp-Rerun-body">
        {model.fields.length ? (
          <ParamFieldset
            legend={trans.__('Pipeline parameters')}
            model={model}
            trans={trans}
          />
        ) : (
          <p className="jp-mlp-Empty">
            {trans.__('This pipeline has no parameters.')}
          </p>
        )}
        <fieldset className="jp-mlp-Rerun-where">
          <legend>{trans.__('Where')}</legend>
          <ExecutorField model={model} trans={trans} />
          <label className="jp-mlp-RerunField">
            <span className="jp-mlp-RerunField-label">
              {trans.__('Ignore the cache (rerun every stage)')}
            </span>
            <input
              type="checkbox"
              name="noCache"
              checked={model.noCache}
              onChange={e => model.setNoCache(e.currentTarget.checked)}
            />
          </label>
        </fieldset>
      </div>
      <DialogFooter
        onCancel={() => onDone(null)}
        submitClass="jp-mlp-RunForm-submit"
        disabled={!model.valid}
        label={trans.__('Run')}
        trans={trans}
      />
    </form>
  );
}

/** Ask for the pipeline parameters and the executor; null when cancelled. */
export function askRunOptions(
  params: Record<string, JSONValue>,
  trans: TranslationBundle
): Promise<IRunRequest | null> {
  const model = new RunFormModel(params);
  return showFormDialog<IRunRequest>({
    model,
    label: trans.__('Run pipeline'),
    form: onDone => <RunForm model={model} trans={trans} onDone={onDone} />
  });
}
