/**
 * The Sweep… form's state: per parameter of the template run a mode (fixed: the recorded value;
 * choices; range, int or float by the recorded type), the objective (a metric with its aggregate,
 * or a numeric output), the budget, sampler, pruning, executor and GPUs. It composes the CLI's
 * `-p` and `--objective` texts; a server refusal is shown next to the field it names.
 */
import {
  ApiError,
  errorText,
  getMetricKeys,
  getOutputs,
  getParams,
  IMetricKey,
  IOutput,
  IParam,
  JSONValue
} from '../api';
import { startSweep } from '../api/sweeps';
import { IStartSweepRequest } from '../api/types';
import { ExecutorFormModel } from '../model/RerunModel';
import { typeKind } from '../paramTypes';

export type SweepMode = 'fixed' | 'choices' | 'range';
export type Sampler = 'tpe' | 'random' | 'grid';
export type Aggregate = 'last' | 'min' | 'max';
export type Direction = 'max' | 'min';

/** Why a field's text is refused before sending (components translate it). */
export type SweepFieldError =
  | 'not-int'
  | 'not-number'
  | 'required'
  | 'no-choices'
  | 'not-count'
  | 'nothing-searched';

export interface ISweepParamField {
  key: string;
  type: string | null;
  /** int or float parameters may be ranges; the recorded type decides which. */
  numeric: 'int' | 'float' | null;
  recorded: JSONValue;
  mode: SweepMode;
  choices: string;
  low: string;
  high: string;
  step: string;
  log: boolean;
}

/** An objective the template run can give: a metric (with aggregates) or a numeric output. */
export interface IObjectiveOption {
  source: 'metric' | 'output';
  key: string;
}

const INT_RE = /^[+-]?\d+$/;
const FLOAT_RE = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

export function numericKind(type: string | null): 'int' | 'float' | null {
  const kind = typeKind(type);
  return kind === 'int' || kind === 'float' ? kind : null;
}

function checkNumber(
  text: string,
  kind: 'int' | 'float'
): SweepFieldError | null {
  const t = text.trim();
  if (!t) {
    return 'required';
  }
  if (kind === 'int') {
    return INT_RE.test(t) ? null : 'not-int';
  }
  return FLOAT_RE.test(t) ? null : 'not-number';
}

/** The `-p` text of a field (null: fixed, the recorded value is kept and nothing is sent). */
export function specText(field: ISweepParamField): string | null {
  switch (field.mode) {
    case 'fixed':
      return null;
    case 'choices':
      return field.choices
        .split(',')
        .map(c => c.trim())
        .join(',');
    case 'range': {
      const step = field.step.trim();
      return (
        (field.log ? 'log:' : '') +
        `${field.low.trim()}..${field.high.trim()}` +
        (step && !field.log ? `:${step}` : '')
      );
    }
  }
}

/** The field errors the form shows before sending: {part: error}. */
export function fieldErrors(
  field: ISweepParamField
): Partial<Record<'choices' | 'low' | 'high' | 'step', SweepFieldError>> {
  const out: Partial<
    Record<'choices' | 'low' | 'high' | 'step', SweepFieldError>
  > = {};
  if (field.mode === 'choices') {
    const items = field.choices.split(',').map(c => c.trim());
    if (items.length < 2 || items.some(i => !i)) {
      out.choices = 'no-choices';
    }
  } else if (field.mode === 'range' && field.numeric) {
    for (const part of ['low', 'high'] as const) {
      const error = checkNumber(field[part], field.numeric);
      if (error) {
        out[part] = error;
      }
    }
    if (field.step.trim() && !field.log) {
      const error = checkNumber(field.step, field.numeric);
      if (error) {
        out.step = error;
      }
    }
  }
  return out;
}

/** The objective text the grammar of jupyter_mlp/sweeps/objective.py reads. */
export function objectiveText(
  direction: Direction,
  option: IObjectiveOption,
  agg: Aggregate
): string {
  const suffix = option.source === 'metric' && agg !== 'last' ? `:${agg}` : '';
  return `${direction}:${option.source}.${option.key}${suffix}`;
}

/**
 * The form field a refusal is about, from the request field the server names (`params.lr`,
 * `objective`, `trials`, ...): 'param:NAME' for a parameter, else the field itself.
 */
export function errorField(field: string | null): string | null {
  if (!field) {
    return null;
  }
  const [head, ...rest] = field.split('.');
  return head === 'params' && rest.length ? `param:${rest.join('.')}` : head;
}

function guessDirection(key: string): Direction {
  return /loss|err|mse|mae|rmse|time|latency/i.test(key) ? 'min' : 'max';
}

/**
 * The objective last chosen for a template run, for its next Sweep… dialog in this page (where
 * the run still offers it): `source:key`, the direction and the aggregate.
 */
const lastObjective = new Map<
  string,
  { value: string; direction: Direction; agg: Aggregate }
>();

export class SweepFormModel extends ExecutorFormModel {
  constructor(readonly runId: string) {
    super();
  }

  get fields(): readonly ISweepParamField[] {
    return this._fields;
  }
  get objectives(): readonly IObjectiveOption[] {
    return this._objectives;
  }
  get objective(): IObjectiveOption | null {
    return this._objective;
  }
  get direction(): Direction {
    return this._direction;
  }
  get agg(): Aggregate {
    return this._agg;
  }
  get trials(): string {
    return this._trials;
  }
  get concurrency(): string {
    return this._concurrency;
  }
  get sampler(): Sampler {
    return this._sampler;
  }
  get prune(): boolean {
    return this._prune && this._objective?.source === 'metric';
  }
  get canPrune(): boolean {
    return this._objective?.source === 'metric';
  }
  get gpus(): string {
    return this._gpus;
  }
  get loading(): boolean {
    return this._loading;
  }
  get loadError(): string | null {
    return this._loadError;
  }
  get submitting(): boolean {
    return this._submitting;
  }
  /** The server's refusal and the field it names (null: a general one, shown at the bottom). */
  get submitError(): { message: string; field: string | null } | null {
    return this._submitError;
  }

  get trialsError(): SweepFieldError | null {
    const t = this._trials.trim();
    if (!t) {
      return this._sampler === 'grid' ? null : 'required';
    }
    return /^\d+$/.test(t) && Number(t) >= 1 ? null : 'not-count';
  }
  get concurrencyError(): SweepFieldError | null {
    const t = this._concurrency.trim();
    return /^\d+$/.test(t) && Number(t) >= 1 ? null : 'not-count';
  }
  get gpusError(): SweepFieldError | null {
    const t = this._gpus.trim();
    return t === '' || /^\d+$/.test(t) ? null : 'not-count';
  }
  /** At least one parameter must be searched. */
  get searched(): number {
    return this._fields.filter(f => f.mode !== 'fixed').length;
  }

  get valid(): boolean {
    return (
      !this._loading &&
      this._loadError === null &&
      this._objective !== null &&
      this.searched > 0 &&
      this._fields.every(f => Object.keys(fieldErrors(f)).length === 0) &&
      this.trialsError === null &&
      this.concurrencyError === null &&
      this.gpusError === null
    );
  }

  /** The request the form sends (what the CLI would be given). */
  get request(): IStartSweepRequest | null {
    if (!this._objective) {
      return null;
    }
    const params: Record<string, string> = {};
    for (const field of this._fields) {
      const spec = specText(field);
      if (spec !== null) {
        params[field.key] = spec;
      }
    }
    const trials = this._trials.trim();
    const gpus = this._gpus.trim();
    return {
      template: this.runId,
      params,
      objective: objectiveText(this._direction, this._objective, this._agg),
      trials: trials ? Number(trials) : undefined,
      concurrency: Number(this._concurrency.trim()),
      sampler: this._sampler,
      prune: this.prune || undefined,
      executor: this.executor || undefined,
      gpus: gpus === '' ? undefined : Number(gpus)
    };
  }

  async load(): Promise<void> {
    this._loading = true;
    this.emit();
    const fail = <T>(fallback: T) => {
      return (error: unknown): T => {
        this._loadError = this._loadError ?? errorText(error);
        return fallback;
      };
    };
    const [params, metrics, outputs] = await Promise.all([
      getParams(this.runId, this.signal).catch(fail([] as IParam[])),
      getMetricKeys(this.runId, this.signal).catch(fail([] as IMetricKey[])),
      getOutputs(this.runId, this.signal).catch(fail([] as IOutput[])),
      this.executorChoices.load()
    ]);
    this._fields = params.map(p => {
      const numeric = numericKind(p.type);
      const text = p.value === null ? '' : String(p.value);
      return {
        key: p.key,
        type: p.type,
        numeric,
        recorded: p.value,
        mode: 'fixed',
        choices: typeof p.value === 'object' ? '' : text,
        low: numeric ? text : '',
        high: '',
        step: '',
        log: false
      };
    });
    this._objectives = [
      ...metrics.map(m => ({ source: 'metric' as const, key: m.key })),
      ...outputs
        .filter(o => o.kind === 'value' && typeof o.value === 'number')
        .map(o => ({ source: 'output' as const, key: o.name }))
    ];
    const last = lastObjective.get(this.runId);
    const kept = last
      ? this._objectives.find(o => `${o.source}:${o.key}` === last.value)
      : undefined;
    if (last && kept) {
      this._objective = kept;
      this._direction = last.direction;
      this._agg = last.agg;
    } else {
      this._objective = this._objectives[0] ?? null;
      if (this._objective) {
        this._direction = guessDirection(this._objective.key);
      }
    }
    this._loading = false;
    this.emit();
  }

  setMode(key: string, mode: SweepMode): void {
    this._update(key, { mode });
  }

  setPart(
    key: string,
    part: 'choices' | 'low' | 'high' | 'step',
    text: string
  ): void {
    this._update(key, { [part]: text });
  }

  setLog(key: string, log: boolean): void {
    this._update(key, { log });
  }

  /** `source:key` of an option in `objectives`. */
  setObjective(value: string): void {
    const found = this._objectives.find(o => `${o.source}:${o.key}` === value);
    if (found) {
      this._objective = found;
      this._objectiveChosen();
    }
  }

  setDirection(direction: Direction): void {
    this._direction = direction;
    this._objectiveChosen();
  }

  setAgg(agg: Aggregate): void {
    this._agg = agg;
    this._objectiveChosen();
  }

  setTrials(text: string): void {
    this._trials = text;
    this._touched('trials');
  }

  setConcurrency(text: string): void {
    this._concurrency = text;
    this._touched('concurrency');
  }

  setSampler(sampler: Sampler): void {
    this._sampler = sampler;
    this._touched('sampler');
  }

  setPrune(prune: boolean): void {
    this._prune = prune;
    this._touched('prune');
  }

  setExecutor(name: string): void {
    super.setExecutor(name);
    this._touched('executor');
  }

  setGpus(text: string): void {
    this._gpus = text;
    this._touched('gpus');
  }

  /** Start the sweep; its id, or null (the reason is in `submitError`). */
  async submit(): Promise<string | null> {
    const request = this.request;
    if (!this.valid || this._submitting || !request) {
      return null;
    }
    this._submitting = true;
    this._submitError = null;
    this.emit();
    try {
      const { id } = await startSweep(request);
      return id;
    } catch (error) {
      const message =
        error instanceof ApiError &&
        error.status === 404 &&
        error.message === 'Not Found'
          ? 'This server has no sweep routes (POST /mlp/api/sweeps).'
          : errorText(error);
      this._submitError = {
        message,
        field: error instanceof ApiError ? errorField(error.field) : null
      };
      return null;
    } finally {
      this._submitting = false;
      this.emit();
    }
  }

  /** Remember the objective for this template run's next dialog; a change of the form. */
  private _objectiveChosen(): void {
    if (this._objective) {
      lastObjective.set(this.runId, {
        value: `${this._objective.source}:${this._objective.key}`,
        direction: this._direction,
        agg: this._agg
      });
    }
    this._touched('objective');
  }

  private _update(key: string, changes: Partial<ISweepParamField>): void {
    this._fields = this._fields.map(f =>
      f.key === key ? { ...f, ...changes } : f
    );
    this._touched(`param:${key}`);
  }

  /** An edit clears the server's refusal of that field (or a general one). */
  private _touched(field: string): void {
    const error = this._submitError;
    if (
      error &&
      (error.field === null ||
        error.field === field ||
        error.field === 'params')
    ) {
      this._submitError = null;
    }
    this.emit();
  }

  private _fields: ISweepParamField[] = [];
  private _objectives: IObjectiveOption[] = [];
  private _objective: IObjectiveOption | null = null;
  private _direction: Direction = 'max';
  private _agg: Aggregate = 'last';
  private _trials = '20';
  private _concurrency = '2';
  private _sampler: Sampler = 'tpe';
  private _prune = false;
  private _gpus = '';
  private _loading = true;
  private _loadError: string | null = null;
  private _submitting = false;
  private _submitError: { message: string; field: string | null } | null = null;
}
