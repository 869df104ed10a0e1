/**
 * The rerun form's state: one field per parameter of the run, typed by the Python type the run
 * recorded (ints stay ints, bools are checkboxes, lists and dicts are JSON), the executor and the
 * GPUs. Invalid values are refused in the form; the server's own refusal is shown too.
 */
import {
  ApiError,
  errorText,
  getParams,
  IExecutor,
  IParam,
  JSONValue,
  rerun
} from '../api';
import { isSequenceKind, typeKind } from '../paramTypes';
import { ExecutorChoices } from './ExecutorChoices';
import { LiveModel } from './LiveModel';

/** How a parameter is edited. */
export type FieldKind =
  'int' | 'float' | 'bool' | 'str' | 'list' | 'dict' | 'json';

export function fieldKind(type: string | null, value: JSONValue): FieldKind {
  const kind = typeKind(type);
  switch (kind) {
    case 'int':
    case 'float':
    case 'bool':
    case 'str':
    case 'dict':
      return kind;
    default:
      if (isSequenceKind(kind)) {
        return 'list';
      }
      return type === null && typeof value === 'string' ? 'str' : 'json';
  }
}

/** The text a field starts with. */
export function fieldText(kind: FieldKind, value: JSONValue): string {
  switch (kind) {
    case 'str':
      return typeof value === 'string' ? value : JSON.stringify(value);
    case 'int':
    case 'float':
      return value === null ? '' : String(value);
    case 'bool':
      return value ? 'true' : 'false';
    case 'list':
    case 'dict':
    case 'json':
      return JSON.stringify(
        value,
        null,
        value && typeof value === 'object' ? 1 : 0
      ).replace(/\n\s*/g, ' ');
  }
}

/** Why a field's text is refused (components turn it into a translated sentence). */
export type FieldError =
  | 'not-int'
  | 'too-large'
  | 'not-finite'
  | 'not-number'
  | 'not-json'
  | 'not-list'
  | 'not-dict'
  | 'not-gpus';

export type Parsed = { value: JSONValue } | { error: FieldError };

const INT_RE = /^[+-]?\d+$/;
const FLOAT_RE = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** A field's text as the value to send, or why it is refused. */
export function parseField(kind: FieldKind, text: string): Parsed {
  const t = text.trim();
  switch (kind) {
    case 'int':
      if (!INT_RE.test(t)) {
        return { error: 'not-int' };
      }
      if (!Number.isSafeInteger(Number(t))) {
        return { error: 'too-large' };
      }
      return { value: Number(t) };
    case 'float': {
      const lower = t.toLowerCase();
      if (lower === 'nan' || lower === 'inf' || lower === '-inf') {
        return { error: 'not-finite' };
      }
      if (!FLOAT_RE.test(t)) {
        return { error: 'not-number' };
      }
      return { value: Number(t) };
    }
    case 'bool':
      return { value: t === 'true' };
    case 'str':
      return { value: text };
    case 'list':
    case 'dict':
    case 'json': {
      let value: JSONValue;
      try {
        value = JSON.parse(t) as JSONValue;
      } catch {
        return { error: 'not-json' };
      }
      if (kind === 'list' && !Array.isArray(value)) {
        return { error: 'not-list' };
      }
      if (
        kind === 'dict' &&
        (value === null || typeof value !== 'object' || Array.isArray(value))
      ) {
        return { error: 'not-dict' };
      }
      return { value };
    }
  }
}

export interface IRerunField {
  key: string;
  /** The Python type the run recorded (shown beside the field). */
  type: string | null;
  kind: FieldKind;
  original: JSONValue;
  text: string;
  error: FieldError | null;
}

/** A parameter's field, typed by `type` (the recorded Python type; null: none recorded). */
export function newField(
  key: string,
  type: string | null,
  value: JSONValue
): IRerunField {
  const kind = fieldKind(type, value);
  return {
    key,
    type,
    kind,
    original: value,
    text: fieldText(kind, value),
    error: null
  };
}

/** A field with the text typed into it, checked (the error shows at the field). */
export function withText(field: IRerunField, text: string): IRerunField {
  const parsed = parseField(field.kind, text);
  return { ...field, text, error: 'error' in parsed ? parsed.error : null };
}

function sameValue(a: JSONValue, b: JSONValue): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * The executor part of a form that starts work (the Rerun and Sweep forms): the one executor list
 * of the front end, loaded by the form's `load` and disposed with it; a change of it is a change of
 * the form.
 */
export abstract class ExecutorFormModel extends LiveModel {
  constructor() {
    super(null);
    this.executorChoices.changed.connect(() => this.emit());
  }

  /** Where the work can go. */
  readonly executorChoices = new ExecutorChoices();

  dispose(): void {
    this.executorChoices.dispose();
    super.dispose();
  }

  get executors(): readonly IExecutor[] {
    return this.executorChoices.executors ?? [];
  }

  /** The executor chosen ('' : the server's default). */
  get executor(): string {
    return this.executorChoices.chosen ?? '';
  }

  /** The executors could not be listed (the default one is used). */
  get executorsError(): string | null {
    return this.executorChoices.error;
  }

  setExecutor(name: string): void {
    this.executorChoices.choose(name || null);
  }
}

export class RerunModel extends ExecutorFormModel {
  constructor(readonly runId: string) {
    super();
  }

  get fields(): readonly IRerunField[] {
    return this._fields;
  }

  /** GPUs as typed; empty means "as many as the run had". */
  get gpus(): string {
    return this._gpus;
  }

  get gpusError(): FieldError | null {
    const t = this._gpus.trim();
    return t === '' || /^\d+$/.test(t) ? null : 'not-gpus';
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

  /** The server refused the rerun (e.g. a value that does not fit the parameter). */
  get submitError(): string | null {
    return this._submitError;
  }

  get valid(): boolean {
    return (
      !this._loading &&
      this._loadError === null &&
      this._fields.every(f => f.error === null) &&
      this.gpusError === null
    );
  }

  /** Parameters whose value differs from the run's. */
  get changes(): Record<string, JSONValue> {
    const out: Record<string, JSONValue> = {};
    for (const field of this._fields) {
      const parsed = parseField(field.kind, field.text);
      if ('value' in parsed && !sameValue(parsed.value, field.original)) {
        out[field.key] = parsed.value;
      }
    }
    return out;
  }

  async load(): Promise<void> {
    this._loading = true;
    this.emit();
    const [params] = await Promise.all([
      getParams(this.runId, this.signal).catch((error: unknown) => {
        this._loadError = errorText(error);
        return [] as IParam[];
      }),
      this.executorChoices.load()
    ]);
    this._fields = params.map(p => newField(p.key, p.type, p.value));
    this._loading = false;
    this.emit();
  }

  setText(key: string, text: string): void {
    this._fields = this._fields.map(f =>
      f.key === key ? withText(f, text) : f
    );
    this._submitError = null;
    this.emit();
  }

  setGpus(text: string): void {
    this._gpus = text;
    this.emit();
  }

  /** Queue the rerun; returns the new run's id, or null (the reason is in `submitError`). */
  async submit(): Promise<string | null> {
    if (!this.valid || this._submitting) {
      return null;
    }
    this._submitting = true;
    this._submitError = null;
    this.emit();
    try {
      const gpus = this._gpus.trim();
      const { id } = await rerun(this.runId, {
        params: this.changes,
        executor: this.executor || undefined,
        gpus: gpus === '' ? undefined : Number(gpus),
        allow_new: false
      });
      return id;
    } catch (error) {
      this._submitError =
        error instanceof ApiError &&
        error.status === 404 &&
        error.message === 'Not Found'
          ? 'This server has no rerun route (POST /mlp/api/runs/{id}/rerun).'
          : errorText(error);
      return null;
    } finally {
      this._submitting = false;
      this.emit();
    }
  }

  private _fields: IRerunField[] = [];
  private _gpus = '';
  private _loading = true;
  private _loadError: string | null = null;
  private _submitting = false;
  private _submitError: string | null = null;
}
