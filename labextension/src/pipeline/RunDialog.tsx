import { Dialog, ReactWidget, showDialog } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import * as React from 'react';

import { ExecutorNotes } from '../components/RerunDialog';
import { ExecutorChoices } from '../model/ExecutorChoices';
import { formatLiteral, JSONValue, parseLiteral, pythonType } from './spec';

export interface IRunRequest {
  params: Record<string, JSONValue>;
  executor: string | null;
  noCache: boolean;
}

interface IFormState {
  texts: Record<string, string>;
  noCache: boolean;
}

/** The dialog's body: one field per pipeline parameter, the executor, "ignore the cache". */
class RunForm extends ReactWidget {
  constructor(
    private readonly _params: Record<string, JSONValue>,
    private readonly _choices: ExecutorChoices,
    private readonly _trans: TranslationBundle
  ) {
    super();
    this.addClass('jp-mlp-RunForm');
    const texts: Record<string, string> = {};
    for (const [key, value] of Object.entries(_params)) {
      texts[key] = formatLiteral(value, pythonType(value));
    }
    this._state = { texts, noCache: false };
    _choices.changed.connect(() => this.update(), this);
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
      executor: this._choices.chosen,
      noCache: this._state.noCache
    };
  }

  protected render(): JSX.Element {
    const trans = this._trans;
    const keys = Object.keys(this._params);
    const executors = this._choices.executors;
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
            value={this._choices.chosen ?? ''}
            onChange={e => this._choices.choose(e.target.value || null)}
          >
            {executors === null ? (
              <option value="">{trans.__('loading…')}</option>
            ) : null}
            {executors !== null && !executors.length ? (
              <option value="">{trans.__('the server default')}</option>
            ) : null}
            {(executors ?? []).map(e => (
              <option
                key={e.name}
                value={e.name}
                disabled={e.available === false}
                title={e.reason ?? undefined}
              >
                {e.available === false
                  ? trans.__('%1 (unavailable)', e.name)
                  : e.slots
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
        <ExecutorNotes executors={executors} trans={trans} />
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
}

/** Ask for the pipeline parameters and the executor; null when cancelled. */
export async function askRunOptions(
  params: Record<string, JSONValue>,
  trans: TranslationBundle
): Promise<IRunRequest | { error: string } | null> {
  const choices = new ExecutorChoices();
  void choices.load();
  const result = await showDialog({
    title: trans.__('Run pipeline'),
    body: new RunForm(params, choices, trans),
    buttons: [
      Dialog.cancelButton({ label: trans.__('Cancel') }),
      Dialog.okButton({ label: trans.__('Run') })
    ]
  }).finally(() => choices.dispose());
  if (!result.button.accept || !result.value) {
    return null;
  }
  return result.value;
}
