import { Dialog, ReactWidget, showDialog } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import * as React from 'react';

import { IExecutorInfo, listExecutors } from './api';
import { formatLiteral, JSONValue, parseLiteral, pythonType } from './spec';

export interface IRunRequest {
  params: Record<string, JSONValue>;
  executor: string | null;
  noCache: boolean;
}

interface IFormState {
  texts: Record<string, string>;
  executor: string | null;
  noCache: boolean;
}

/** The dialog's body: one field per pipeline parameter, the executor, "ignore the cache". */
class RunForm extends ReactWidget {
  constructor(
    private readonly _params: Record<string, JSONValue>,
    private readonly _trans: TranslationBundle
  ) {
    super();
    this.addClass('jp-mlp-RunForm');
    const texts: Record<string, string> = {};
    for (const [key, value] of Object.entries(_params)) {
      texts[key] = formatLiteral(value, pythonType(value));
    }
    this._state = { texts, executor: null, noCache: false };
    listExecutors().then(
      found => {
        this._executors = found.executors;
        this._state.executor =
          found.default ?? found.executors[0]?.name ?? null;
        this.update();
      },
      () => {
        this._executors = [];
        this.update();
      }
    );
  }

  getValue(): IRunRequest | { error: string } {
    const params: Record<string, JSONValue> = {};
    for (const [key, def] of Object.entries(this._params)) {
      const text = this._state.texts[key] ?? '';
      const type = def === null || def === '' ? null : pythonType(def);
      const parsed = parseLiteral(text, type);
      if ('error' in parsed) {
        return { error: `${key} ${parsed.error}` };
      }
      params[key] = parsed.value;
    }
    return {
      params,
      executor: this._state.executor,
      noCache: this._state.noCache
    };
  }

  protected render(): JSX.Element {
    const trans = this._trans;
    const keys = Object.keys(this._params);
    const set = (changes: Partial<IFormState>) => {
      this._state = { ...this._state, ...changes };
      this.update();
    };
    return (
      <div className="jp-mlp-RunForm-body">
        {keys.length ? (
          <fieldset className="jp-mlp-RunForm-params">
            <legend>{trans.__('Pipeline parameters')}</legend>
            {keys.map(key => (
              <label key={key} className="jp-mlp-Field">
                <span className="jp-mlp-Field-label">
                  {key}
                  <span className="jp-mlp-Field-type">
                    {pythonType(this._params[key])}
                  </span>
                </span>
                <input
                  className="jp-mlp-Field-input"
                  aria-label={trans.__('Parameter %1', key)}
                  value={this._state.texts[key] ?? ''}
                  onChange={e =>
                    set({
                      texts: { ...this._state.texts, [key]: e.target.value }
                    })
                  }
                />
              </label>
            ))}
          </fieldset>
        ) : (
          <p>{trans.__('This pipeline has no parameters.')}</p>
        )}
        <label className="jp-mlp-Field">
          <span className="jp-mlp-Field-label">{trans.__('Executor')}</span>
          <select
            className="jp-mlp-Field-input"
            aria-label={trans.__('Executor')}
            value={this._state.executor ?? ''}
            onChange={e => set({ executor: e.target.value || null })}
          >
            {this._executors === null ? (
              <option value="">{trans.__('loading…')}</option>
            ) : null}
            {this._executors !== null && !this._executors.length ? (
              <option value="">{trans.__('the server default')}</option>
            ) : null}
            {(this._executors ?? []).map(e => (
              <option key={e.name} value={e.name}>
                {e.slots
                  ? trans.__(
                      '%1 (%2 slots, %3 running)',
                      e.name,
                      e.slots,
                      e.running ?? 0
                    )
                  : e.name}
              </option>
            ))}
          </select>
        </label>
        <label className="jp-mlp-Field jp-mlp-Field-check">
          <input
            type="checkbox"
            checked={this._state.noCache}
            onChange={e => set({ noCache: e.target.checked })}
          />
          <span>{trans.__('Ignore the cache (rerun every stage)')}</span>
        </label>
      </div>
    );
  }

  private _state: IFormState;
  private _executors: IExecutorInfo[] | null = null;
}

/** Ask for the pipeline parameters and the executor; null when cancelled. */
export async function askRunOptions(
  params: Record<string, JSONValue>,
  trans: TranslationBundle
): Promise<IRunRequest | { error: string } | null> {
  const result = await showDialog({
    title: trans.__('Run pipeline'),
    body: new RunForm(params, trans),
    buttons: [
      Dialog.cancelButton({ label: trans.__('Cancel') }),
      Dialog.okButton({ label: trans.__('Run') })
    ]
  });
  if (!result.button.accept || !result.value) {
    return null;
  }
  return result.value;
}
