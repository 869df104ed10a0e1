/**
 * The Sweep… dialog, laid out as the Rerun dialog: per parameter a mode (fixed / choices / range),
 * the objective, the budget and sampler, pruning, executor and GPUs; Cancel left of Start sweep.
 * The dialog stays open when the server refuses, with its message next to the field it names.
 */
import { TranslationBundle } from '@jupyterlab/translation';
import * as React from 'react';

import {
  DialogFooter,
  ExecutorNotes,
  ExecutorSelect,
  showFormDialog
} from '../components/RerunDialog';
import { useSignal } from '../components/hooks';
import {
  Aggregate,
  Direction,
  fieldErrors,
  IObjectiveOption,
  ISweepParamField,
  Sampler,
  SweepFieldError,
  SweepFormModel,
  SweepMode
} from './SweepFormModel';

function fieldErrorText(
  error: SweepFieldError,
  trans: TranslationBundle
): string {
  switch (error) {
    case 'not-int':
      return trans.__('Enter a whole number.');
    case 'not-number':
      return trans.__('Enter a number.');
    case 'required':
      return trans.__('Required.');
    case 'no-choices':
      return trans.__('Give at least two comma-separated choices.');
    case 'not-count':
      return trans.__('Enter a whole number (at least 1).');
    case 'nothing-searched':
      return trans.__('Search at least one parameter.');
  }
}

/** An objective as its option reads ("metric loss", "output val_acc"). */
function objectiveName(
  option: IObjectiveOption,
  trans: TranslationBundle
): string {
  return option.source === 'metric'
    ? trans.__('metric %1', option.key)
    : trans.__('output %1', option.key);
}

/** The server's message, shown where the form field it names is. */
function ServerError({
  model,
  field
}: {
  model: SweepFormModel;
  field: string;
}): JSX.Element | null {
  const error = model.submitError;
  if (!error || error.field !== field) {
    return null;
  }
  return (
    <p
      className="jp-mlp-RerunField-error jp-mlp-Sweep-serverError"
      role="alert"
      data-field={field}
    >
      {error.message}
    </p>
  );
}

function Row({
  label,
  htmlFor,
  children
}: {
  label: React.ReactNode;
  htmlFor?: string;
  children: React.ReactNode;
}): JSX.Element {
  return (
    <div className="jp-mlp-RerunField">
      <label className="jp-mlp-RerunField-label" htmlFor={htmlFor}>
        {label}
      </label>
      {children}
    </div>
  );
}

export function SweepForm({
  model,
  runName,
  trans,
  onDone
}: {
  model: SweepFormModel;
  runName: string;
  trans: TranslationBundle;
  onDone: (id: string | null) => void;
}): JSX.Element {
  useSignal(model.changed);
  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    const id = await model.submit();
    if (id) {
      onDone(id);
    }
  };
  const error = model.submitError;
  const objectiveValue = model.objective
    ? `${model.objective.source}:${model.objective.key}`
    : '';
  const objectiveLabel = model.objective
    ? objectiveName(model.objective, trans)
    : undefined;
  const countError = (e: SweepFieldError | null) =>
    e ? (
      <p className="jp-mlp-RerunField-error" role="alert">
        {fieldErrorText(e, trans)}
      </p>
    ) : null;
  return (
    <form
      className="jp-mlp-Rerun jp-mlp-SweepForm"
      onSubmit={submit}
      noValidate
    >
      <div className="jp-Dialog-header jp-mlp-Rerun-header">
        <h2 className="jp-mlp-Rerun-title">{trans.__('Sweep %1', runName)}</h2>
      </div>
      <div className="jp-Dialog-body jp-mlp-Rerun-body">
        {model.loading && (
          <p className="jp-mlp-RunsPanel-note">
            {trans.__('Loading parameters and metrics…')}
          </p>
        )}
        {model.loadError && (
          <p className="jp-mlp-RunDetail-error" role="alert">
            {trans.__('Could not load the run: %1', model.loadError)}
          </p>
        )}
        {!model.loading && model.fields.length === 0 && (
          <p className="jp-mlp-Empty">
            {trans.__(
              'This run recorded no parameters: there is nothing to search.'
            )}
          </p>
        )}
        {model.fields.length > 0 && (
          <fieldset className="jp-mlp-Rerun-params jp-mlp-Sweep-params">
            <legend>{trans.__('Parameters')}</legend>
            {model.fields.map(field => (
              <ParamRow
                key={field.key}
                field={field}
                model={model}
                trans={trans}
              />
            ))}
            {!model.loading && model.searched === 0 && (
              <p className="jp-mlp-Muted">
                {fieldErrorText('nothing-searched', trans)}
              </p>
            )}
            <ServerError model={model} field="params" />
          </fieldset>
        )}
        <fieldset className="jp-mlp-Sweep-objective">
          <legend>{trans.__('Objective')}</legend>
          {!model.loading && model.objectives.length === 0 && (
            <p className="jp-mlp-Muted">
              {trans.__(
                'This run logged no metric and no numeric output to optimise.'
              )}
            </p>
          )}
          <Row label={trans.__('Optimise')} htmlFor="jp-mlp-sweep-objective">
            <div className="jp-mlp-Sweep-inline">
              <select
                id="jp-mlp-sweep-direction"
                className="jp-mod-styled"
                name="direction"
                aria-label={trans.__('Direction')}
                value={model.direction}
                onChange={e =>
                  model.setDirection(e.currentTarget.value as Direction)
                }
              >
                <option value="max">{trans.__('maximise')}</option>
                <option value="min">{trans.__('minimise')}</option>
              </select>
              <select
                id="jp-mlp-sweep-objective"
                className="jp-mod-styled"
                name="objective"
                title={objectiveLabel}
                value={objectiveValue}
                onChange={e => model.setObjective(e.currentTarget.value)}
              >
                {model.objectives.map(o => (
                  <option
                    key={`${o.source}:${o.key}`}
                    value={`${o.source}:${o.key}`}
                  >
                    {objectiveName(o, trans)}
                  </option>
                ))}
              </select>
            </div>
          </Row>
          {model.objective?.source === 'metric' && (
            <Row label={trans.__('Metric value')} htmlFor="jp-mlp-sweep-agg">
              <select
                id="jp-mlp-sweep-agg"
                className="jp-mod-styled"
                name="agg"
                aria-label={trans.__('Aggregate')}
                value={model.agg}
                onChange={e => model.setAgg(e.currentTarget.value as Aggregate)}
              >
                <option value="last">{trans.__('last value')}</option>
                <option value="min">{trans.__('minimum')}</option>
                <option value="max">{trans.__('maximum')}</option>
              </select>
            </Row>
          )}
          <ServerError model={model} field="objective" />
        </fieldset>
        <fieldset className="jp-mlp-Sweep-budget">
          <legend>{trans.__('Search')}</legend>
          <Row label={trans.__('Trials')} htmlFor="jp-mlp-sweep-trials">
            <input
              id="jp-mlp-sweep-trials"
              className={`jp-mod-styled${model.trialsError ? ' jp-mod-error' : ''}`}
              name="trials"
              inputMode="numeric"
              placeholder={
                model.sampler === 'grid' ? trans.__('every grid point') : ''
              }
              value={model.trials}
              onChange={e => model.setTrials(e.currentTarget.value)}
            />
          </Row>
          {countError(model.trialsError)}
          <ServerError model={model} field="trials" />
          <Row label={trans.__('At once')} htmlFor="jp-mlp-sweep-concurrency">
            <input
              id="jp-mlp-sweep-concurrency"
              className={`jp-mod-styled${model.concurrencyError ? ' jp-mod-error' : ''}`}
              name="concurrency"
              inputMode="numeric"
              value={model.concurrency}
              onChange={e => model.setConcurrency(e.currentTarget.value)}
            />
          </Row>
          {countError(model.concurrencyError)}
          <ServerError model={model} field="concurrency" />
          <Row label={trans.__('Sampler')} htmlFor="jp-mlp-sweep-sampler">
            <select
              id="jp-mlp-sweep-sampler"
              className="jp-mod-styled"
              name="sampler"
              value={model.sampler}
              onChange={e => model.setSampler(e.currentTarget.value as Sampler)}
            >
              <option value="tpe">{trans.__('TPE (Bayesian)')}</option>
              <option value="random">{trans.__('random')}</option>
              <option value="grid">{trans.__('grid')}</option>
            </select>
          </Row>
          <ServerError model={model} field="sampler" />
          {model.canPrune && (
            <Row label={trans.__('Prune')} htmlFor="jp-mlp-sweep-prune">
              <input
                id="jp-mlp-sweep-prune"
                type="checkbox"
                name="prune"
                checked={model.prune}
                onChange={e => model.setPrune(e.currentTarget.checked)}
              />
            </Row>
          )}
          <ServerError model={model} field="prune" />
        </fieldset>
        <fieldset className="jp-mlp-Rerun-where">
          <legend>{trans.__('Where')}</legend>
          <Row label={trans.__('Executor')} htmlFor="jp-mlp-sweep-executor">
            <ExecutorSelect
              id="jp-mlp-sweep-executor"
              model={model}
              trans={trans}
            />
          </Row>
          <ExecutorNotes
            executors={model.executors}
            error={model.executorsError}
            trans={trans}
          />
          <ServerError model={model} field="executor" />
          <Row label={trans.__('GPUs per trial')} htmlFor="jp-mlp-sweep-gpus">
            <input
              id="jp-mlp-sweep-gpus"
              className={`jp-mod-styled${model.gpusError ? ' jp-mod-error' : ''}`}
              name="gpus"
              inputMode="numeric"
              placeholder={trans.__('as the run had')}
              value={model.gpus}
              onChange={e => model.setGpus(e.currentTarget.value)}
            />
          </Row>
          {countError(model.gpusError)}
          <ServerError model={model} field="gpus" />
        </fieldset>
        {error &&
          (error.field === null || !KNOWN_FIELDS(model).has(error.field)) && (
            <p
              className="jp-mlp-RunDetail-error jp-mlp-Rerun-error"
              role="alert"
            >
              {error.message}
            </p>
          )}
      </div>
      <DialogFooter
        onCancel={() => onDone(null)}
        submitClass="jp-mlp-Sweep-submit"
        disabled={!model.valid || model.submitting}
        label={
          model.submitting ? trans.__('Starting…') : trans.__('Start sweep')
        }
        trans={trans}
      />
    </form>
  );
}

/** The fields that show a server message beside them (others go to the bottom line). */
function KNOWN_FIELDS(model: SweepFormModel): Set<string> {
  const known = new Set([
    'objective',
    'trials',
    'concurrency',
    'sampler',
    'prune',
    'executor',
    'gpus'
  ]);
  if (model.fields.length) {
    known.add('params');
  }
  for (const f of model.fields) {
    known.add(`param:${f.key}`);
  }
  return known;
}

function ParamRow({
  field,
  model,
  trans
}: {
  field: ISweepParamField;
  model: SweepFormModel;
  trans: TranslationBundle;
}): JSX.Element {
  const id = `jp-mlp-sweep-${field.key}`;
  const errors = fieldErrors(field);
  const input = (
    part: 'choices' | 'low' | 'high' | 'step',
    label: string,
    placeholder = '',
    title?: string
  ) => (
    <input
      id={`${id}-${part}`}
      title={title}
      className={`jp-mod-styled${errors[part] ? ' jp-mod-error' : ''}`}
      name={`${field.key}.${part}`}
      aria-label={`${field.key} ${label}`}
      aria-invalid={errors[part] ? 'true' : 'false'}
      placeholder={placeholder}
      inputMode={
        part === 'choices'
          ? 'text'
          : field.numeric === 'int'
            ? 'numeric'
            : 'decimal'
      }
      spellCheck={false}
      value={field[part]}
      onChange={e => model.setPart(field.key, part, e.currentTarget.value)}
    />
  );
  const shown = Object.values(errors);
  return (
    <div
      className="jp-mlp-SweepParam"
      data-param={field.key}
      data-mode={field.mode}
    >
      <div className="jp-mlp-RerunField">
        <label className="jp-mlp-RerunField-label" htmlFor={`${id}-mode`}>
          <code>{field.key}</code>{' '}
          <span className="jp-mlp-Muted">{field.type ?? trans.__('any')}</span>
        </label>
        <select
          id={`${id}-mode`}
          className="jp-mod-styled"
          name={`${field.key}.mode`}
          value={field.mode}
          onChange={e =>
            model.setMode(field.key, e.currentTarget.value as SweepMode)
          }
        >
          <option value="fixed">
            {trans.__('fixed: %1', JSON.stringify(field.recorded))}
          </option>
          <option value="choices">{trans.__('choices')}</option>
          {field.numeric && (
            <option value="range">
              {field.numeric === 'int'
                ? trans.__('range (int)')
                : trans.__('range (float)')}
            </option>
          )}
        </select>
      </div>
      {field.mode === 'choices' && (
        <div className="jp-mlp-RerunField">
          <span className="jp-mlp-RerunField-label jp-mlp-Muted">
            {trans.__('comma-separated')}
          </span>
          {input('choices', trans.__('choices'), trans.__('e.g. 3,5,8'))}
        </div>
      )}
      {field.mode === 'range' && (
        <div className="jp-mlp-RerunField">
          <span className="jp-mlp-RerunField-label jp-mlp-Muted">
            {field.log
              ? trans.__('low, high')
              : trans.__('low, high, step (optional)')}
          </span>
          <div className="jp-mlp-Sweep-inline jp-mlp-Sweep-range">
            {input('low', trans.__('low'), trans.__('low'))}
            <span aria-hidden="true">..</span>
            {input('high', trans.__('high'), trans.__('high'))}
            {!field.log &&
              input(
                'step',
                trans.__('step'),
                trans.__('step'),
                trans.__('step (optional)')
              )}
            <label className="jp-mlp-Sweep-log">
              <input
                type="checkbox"
                name={`${field.key}.log`}
                checked={field.log}
                onChange={e => model.setLog(field.key, e.currentTarget.checked)}
              />
              {trans.__('log')}
            </label>
          </div>
        </div>
      )}
      {shown.length > 0 && (
        <p className="jp-mlp-RerunField-error" role="alert">
          {fieldErrorText(shown[0]!, trans)}
        </p>
      )}
      <ServerError model={model} field={`param:${field.key}`} />
    </div>
  );
}

/** Show the Sweep… dialog for a template run; resolves with the sweep's id, or null. */
export function showSweepDialog(options: {
  runId: string;
  runName: string;
  trans: TranslationBundle;
}): Promise<string | null> {
  const model = new SweepFormModel(options.runId);
  return showFormDialog({
    model,
    label: options.trans.__('Sweep %1', options.runName),
    className: 'jp-mlp-SweepDialog',
    form: onDone => (
      <SweepForm
        model={model}
        runName={options.runName}
        trans={options.trans}
        onDone={onDone}
      />
    )
  });
}
