/**
 * The state of one open pipeline editor, outside React: the spec (parsed from and written back
 * to the document's text model, which stays the one source of truth), undo/redo, the template
 * runs behind the stages, server validation, pinned runs, the pipeline's run history and the
 * run shown on the canvas (live from the event feed). Components read `state` (an immutable
 * snapshot that changes identity on every change) and call the methods; they never fetch.
 */
import { DocumentRegistry } from '@jupyterlab/docregistry';
import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import { ApiError } from '../api';
import * as api from './api';
import {
  IPipelineRunDetail,
  IPipelineRunSummary,
  IRunEvent,
  IRunInfo,
  IStageStatus,
  ITemplateInfo,
  IValidationIssue
} from './api';
import * as S from './spec';
import { IPipelineSpec, IStageSpec, JSONValue } from './spec';

/** Stage states after which nothing changes. */
export const FINAL_STAGE_STATES = new Set([
  'cached',
  'succeeded',
  'failed',
  'skipped',
  'cancelled'
]);
/** Pipeline run states after which nothing changes. */
export const FINAL_RUN_STATES = new Set([
  'succeeded',
  'finished',
  'failed',
  'cancelled',
  'lost',
  'interrupted'
]);

export interface IMessage {
  text: string;
  level: 'error' | 'info';
  /** Distinguishes two equal messages in a row (the banner re-announces). */
  seq: number;
}

export interface IRunView {
  id: string;
  /** Follow the event feed (a run started here or one still active). */
  live: boolean;
  detail: IPipelineRunDetail | null;
  error: string | null;
}

export interface IPipelineState {
  ready: boolean;
  spec: IPipelineSpec | null;
  /** Why the file could not be read as a pipeline (then `spec` is null). */
  parseError: string | null;
  warning: string | null;
  templates: ReadonlyMap<string, ITemplateInfo>;
  templateErrors: ReadonlyMap<string, string>;
  issues: readonly IValidationIssue[];
  /** null: not validated yet; else when the server could not validate, why. */
  validation: 'pending' | 'ok' | 'unavailable';
  pinned: readonly IRunInfo[] | null;
  pinnedError: string | null;
  history: readonly IPipelineRunSummary[] | null;
  historyError: string | null;
  runView: IRunView | null;
  message: IMessage | null;
  selected: string | null;
  canUndo: boolean;
  canRedo: boolean;
}

const HISTORY_LIMIT = 200;
const VALIDATE_DELAY_MS = 400;
const REFRESH_DELAY_MS = 120;
const POLL_MS = 2000;

export interface IPipelineModelOptions {
  context: DocumentRegistry.Context;
  /** Opens a run in the main area (the runs UI's command), if there is one. */
  openRun?: (id: string) => boolean;
}

export class PipelineModel implements IDisposable {
  constructor(options: IPipelineModelOptions) {
    this.context = options.context;
    this._openRun = options.openRun ?? null;
    this._state = {
      ready: false,
      spec: null,
      parseError: null,
      warning: null,
      templates: new Map(),
      templateErrors: new Map(),
      issues: [],
      validation: 'pending',
      pinned: null,
      pinnedError: null,
      history: null,
      historyError: null,
      runView: null,
      message: null,
      selected: null,
      canUndo: false,
      canRedo: false
    };
    this.context.model.contentChanged.connect(this._onContentChanged, this);
    this.context.fileChanged.connect(this._onFileChanged, this);
    void this.context.ready.then(() => {
      if (this._disposed) {
        return;
      }
      this._diskText = this.context.model.toString();
      this._loadFromText(true);
      this._set({ ready: true });
      void this.refreshPinned();
      void this.refreshHistory();
    });
    this._events = api.subscribeEvents(events => this._onEvents(events));
  }

  readonly context: DocumentRegistry.Context;

  get state(): IPipelineState {
    return this._state;
  }

  /** Emitted after every change of `state`. */
  get stateChanged(): ISignal<this, IPipelineState> {
    return this._stateChanged;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this._events.dispose();
    this._validateAbort?.abort();
    this._stopWatching();
    clearTimeout(this._validateTimer);
    this.context.model.contentChanged.disconnect(this._onContentChanged, this);
    this.context.fileChanged.disconnect(this._onFileChanged, this);
    Signal.clearData(this);
  }

  /** The file's path relative to the server root (what the run route takes). */
  get path(): string {
    return this.context.localPath;
  }

  // --- edits ----------------------------------------------------------------------------------

  /**
   * Change the spec: one undo step, the text model updated (so the document is dirty and
   * saves what the canvas shows), validation scheduled.
   */
  edit(change: (spec: IPipelineSpec) => IPipelineSpec): boolean {
    const spec = this._state.spec;
    if (!spec) {
      return false;
    }
    const next = change(spec);
    if (next === spec) {
      return false;
    }
    this._undo.push(spec);
    if (this._undo.length > HISTORY_LIMIT) {
      this._undo.shift();
    }
    this._redo = [];
    this._apply(next);
    return true;
  }

  undo(): void {
    const prev = this._undo.pop();
    if (prev && this._state.spec) {
      this._redo.push(this._state.spec);
      this._apply(prev);
    }
  }

  redo(): void {
    const next = this._redo.pop();
    if (next && this._state.spec) {
      this._undo.push(this._state.spec);
      this._apply(next);
    }
  }

  /** Add a stage made from a run (dropped or picked); returns its name. */
  async addStageFromRun(
    runId: string,
    position: { x: number; y: number }
  ): Promise<string | null> {
    let template: ITemplateInfo;
    try {
      template = await api.getTemplate(runId);
    } catch (error) {
      this.say(`Could not add run ${runId}: ${errorText(error)}`, 'error');
      return null;
    }
    this._rememberTemplate(template);
    const spec = this._state.spec;
    if (!spec) {
      return null;
    }
    const name = S.uniqueStageName(
      template.name || runId,
      Object.keys(spec.stages)
    );
    const stage: IStageSpec = {
      template: {
        run: template.id,
        notebook: template.notebook,
        snapshot: template.snapshot
      },
      parameters: {},
      gpus: template.gpus,
      cache: true,
      retries: 0,
      after: [],
      position: { x: Math.round(position.x), y: Math.round(position.y) }
    };
    if (!this.edit(s => S.addStage(s, name, stage))) {
      return null;
    }
    this.select(name);
    if (!template.snapshot) {
      this.say(
        `Run "${template.name}" has no notebook snapshot: it cannot be used as a template.`,
        'error'
      );
    }
    return name;
  }

  /**
   * Connect an output (or the order handle) of `source` to an input of `target`; refused with
   * a message (and false) when the types do not fit or it would close a cycle.
   */
  connect(
    source: string,
    sourceHandle: string | null,
    target: string,
    targetHandle: string | null
  ): boolean {
    const spec = this._state.spec;
    if (!spec || !spec.stages[source] || !spec.stages[target]) {
      return false;
    }
    const order = sourceHandle === AFTER_OUT || targetHandle === AFTER_IN;
    if (order && !(sourceHandle === AFTER_OUT && targetHandle === AFTER_IN)) {
      return this._refuse(
        'An order-only edge goes from the bottom handle of a stage to the top handle of another.'
      );
    }
    if (source === target) {
      return this._refuse(
        `Refused: "${source}" cannot feed itself (that would be a cycle).`
      );
    }
    const cycle = S.cycleIfConnected(spec, source, target);
    if (cycle) {
      return this._refuse(
        `Refused: this would create a cycle: ${cycle.join(' → ')}.`
      );
    }
    if (order) {
      return this.edit(s => S.addAfter(s, target, source));
    }
    const output = portName(sourceHandle, 'out');
    const param = portName(targetHandle, 'in');
    if (output === null || param === null) {
      return false;
    }
    const reason = this.connectionTypeError(source, output, target, param);
    if (reason) {
      return this._refuse(`Refused: ${reason}.`);
    }
    this.edit(s => S.setParam(s, target, param, S.outputRef(source, output)));
    return true;
  }

  /** Why an output cannot feed a parameter (types), or null. */
  connectionTypeError(
    source: string,
    output: string,
    target: string,
    param: string
  ): string | null {
    const spec = this._state.spec;
    if (!spec) {
      return null;
    }
    const paramType = this.paramType(target, param);
    const expected = S.expectedKind(paramType);
    if (!expected) {
      return null;
    }
    const out = this.templateOf(source)?.outputs.find(o => o.name === output);
    if (!out) {
      return null; // not produced by the template: the server warns, the type is unknown
    }
    const was = PLAIN_TYPES.has(paramType ?? '')
      ? ''
      : ` (it was ${paramType})`;
    if (out.kind === 'artifact') {
      return paramType === 'str'
        ? null
        : `${target}.${param} expects ${expected}${was}, but ${source}.${output} is an artifact (a file path, a string)`;
    }
    if (!S.fits(paramType, out.value)) {
      return `${target}.${param} expects ${expected}${was}, but ${source}.${output} is ${S.describeKind(out.value)}`;
    }
    return null;
  }

  /** Remove stages and edges (the Delete key). */
  remove(stages: string[], edges: string[]): void {
    this.edit(spec => {
      let next = S.removeStages(spec, stages);
      for (const id of edges) {
        const edge = parseEdgeId(id);
        if (!edge || !next.stages[edge.target]) {
          continue;
        }
        next =
          edge.kind === 'after'
            ? S.removeAfter(next, edge.target, edge.source)
            : S.setParam(next, edge.target, edge.param, undefined);
      }
      return next;
    });
    if (this._state.selected && stages.includes(this._state.selected)) {
      this.select(null);
    }
  }

  rename(from: string, to: string): string | null {
    const spec = this._state.spec;
    if (!spec) {
      return null;
    }
    const error = S.checkStageName(spec, from, to);
    if (error) {
      return error;
    }
    const wasSelected = this._state.selected === from;
    this.edit(s => S.renameStage(s, from, to));
    if (wasSelected) {
      this.select(to);
    }
    return null;
  }

  /** Use another run (of the same notebook) as the stage's template. */
  async replaceTemplate(stage: string, runId: string): Promise<void> {
    let template: ITemplateInfo;
    try {
      template = await api.getTemplate(runId);
    } catch (error) {
      this.say(`Could not load run ${runId}: ${errorText(error)}`, 'error');
      return;
    }
    this._rememberTemplate(template);
    this.edit(spec =>
      S.updateStage(spec, stage, s => ({
        ...s,
        template: {
          ...s.template,
          run: template.id,
          notebook: template.notebook,
          snapshot: template.snapshot
        }
      }))
    );
  }

  /** Runs of the notebook behind a stage's template (to replace it with a newer one). */
  async runsOfNotebook(notebook: string): Promise<IRunInfo[]> {
    return api.listRunsOfNotebook(notebook);
  }

  /** Write positions (the end of a drag, auto-layout). */
  setPositions(positions: Map<string, { x: number; y: number }>): void {
    this.edit(spec => S.setPositions(spec, positions));
  }

  select(name: string | null): void {
    if (this._state.selected !== name) {
      this._set({ selected: name });
    }
  }

  say(text: string, level: 'error' | 'info' = 'info'): void {
    this._set({ message: { text, level, seq: ++this._messageSeq } });
  }

  clearMessage(): void {
    if (this._state.message) {
      this._set({ message: null });
    }
  }

  // --- template data ---------------------------------------------------------------------------

  templateOf(stage: string): ITemplateInfo | null {
    const run = this._state.spec?.stages[stage]?.template?.run;
    return run ? (this._state.templates.get(run) ?? null) : null;
  }

  /** The Python type of a stage parameter as the template recorded it. */
  paramType(stage: string, param: string): string | null {
    return (
      this.templateOf(stage)?.params.find(p => p.key === param)?.type ?? null
    );
  }

  // --- pinned runs, history ----------------------------------------------------------------------

  async refreshPinned(): Promise<void> {
    try {
      const pinned = await api.listPinnedRuns();
      this._set({ pinned, pinnedError: null });
    } catch (error) {
      this._set({ pinnedError: errorText(error) });
    }
  }

  async refreshHistory(): Promise<void> {
    try {
      const history = await api.listPipelineRuns(this.path);
      this._set({ history, historyError: null });
    } catch (error) {
      this._set({
        historyError:
          error instanceof ApiError && error.status === 404
            ? 'The server has no pipeline routes yet.'
            : errorText(error)
      });
    }
  }

  // --- running ---------------------------------------------------------------------------------

  /** Save if dirty, start a run of the file, and follow it on the canvas. */
  async run(
    params: Record<string, JSONValue>,
    executor: string | null,
    noCache: boolean
  ): Promise<string | null> {
    try {
      if (this.context.model.dirty) {
        await this.context.save();
      }
      const request: api.IStartPipelineRun = {
        path: this.path,
        params,
        no_cache: noCache
      };
      if (executor) {
        request.executor = executor;
      }
      const { id } = await api.startPipelineRun(request);
      this.show(id, true);
      void this.refreshHistory();
      return id;
    } catch (error) {
      this.say(`Could not start the pipeline: ${errorText(error)}`, 'error');
      return null;
    }
  }

  async cancel(): Promise<void> {
    const view = this._state.runView;
    if (!view) {
      return;
    }
    try {
      await api.cancelPipelineRun(view.id);
      this._scheduleRefresh();
    } catch (error) {
      this.say(`Could not cancel: ${errorText(error)}`, 'error');
    }
  }

  /** Show a pipeline run's stage states on the canvas (live: follow it while it runs). */
  show(id: string, live = true): void {
    this._stopWatching();
    this._set({ runView: { id, live, detail: null, error: null } });
    this._stageEventSeq.clear();
    void this._refresh();
    if (live) {
      this._poll = setInterval(() => void this._refresh(), POLL_MS);
    }
  }

  /** Back to plain editing: no run's states on the canvas. */
  closeRun(): void {
    this._stopWatching();
    this._set({ runView: null });
  }

  /** Open a stage's run with the runs UI (if present). */
  openRun(id: string): void {
    if (!this._openRun || !this._openRun(id)) {
      this.say(`Run ${id}`, 'info');
    }
  }

  get canOpenRuns(): boolean {
    return this._openRun !== null;
  }

  /** Replace the spec by the one a pipeline run ran (undoable). */
  restoreSpec(spec: IPipelineSpec): void {
    this.edit(() => spec);
  }

  // --- internals -------------------------------------------------------------------------------

  private _set(changes: Partial<IPipelineState>): void {
    this._state = { ...this._state, ...changes };
    this._stateChanged.emit(this._state);
  }

  private _apply(spec: IPipelineSpec): void {
    const text = S.serializeSpec(spec);
    this._lastText = text;
    this._set({
      spec,
      canUndo: this._undo.length > 0,
      canRedo: this._redo.length > 0,
      selected:
        this._state.selected && spec.stages[this._state.selected]
          ? this._state.selected
          : null
    });
    if (this.context.model.toString() !== text) {
      this.context.model.fromString(text);
      // Setting the whole text does not mark a text model dirty (typing does): say so.
      this.context.model.dirty = true;
      this._changedOutside = false;
    }
    this._loadTemplates(spec);
    this._scheduleValidation();
  }

  private _onContentChanged(): void {
    if (!this._state.ready) {
      return;
    }
    const text = this.context.model.toString();
    if (text === this._lastText) {
      return;
    }
    // Changed outside the canvas: revert, reload from disk, another editor of the same file.
    this._changedOutside = true;
    this._loadFromText(false);
    if (text === this._diskText) {
      // Reload from disk: the document is the file again. JupyterLab leaves clearing the dirty
      // flag of a text model to the document (it does not follow a replaced text).
      this.context.model.dirty = false;
    }
  }

  /** The file on disk changed (saved, or reloaded after a change by someone else). */
  private _onFileChanged(): void {
    this._diskText = this.context.model.toString();
    if (this._changedOutside) {
      this._changedOutside = false;
      this.context.model.dirty = false;
    }
  }

  private _loadFromText(initial: boolean): void {
    const text = this.context.model.toString();
    this._lastText = text;
    const base = this.context.localPath.split('/').pop() ?? 'pipeline';
    const parsed = S.parseSpec(text, base.replace(/\.mlpipe$/i, ''));
    if ('error' in parsed) {
      this._set({ spec: null, parseError: parsed.error });
      return;
    }
    if (!initial && this._state.spec) {
      this._undo.push(this._state.spec);
      this._redo = [];
    }
    this._set({
      spec: parsed.spec,
      parseError: null,
      warning: parsed.warning,
      canUndo: this._undo.length > 0,
      canRedo: false
    });
    this._loadTemplates(parsed.spec);
    this._scheduleValidation(initial ? 0 : VALIDATE_DELAY_MS);
  }

  private _loadTemplates(spec: IPipelineSpec): void {
    for (const stage of Object.values(spec.stages)) {
      const id = stage.template?.run;
      if (
        typeof id !== 'string' ||
        this._state.templates.has(id) ||
        this._templatesLoading.has(id) ||
        this._state.templateErrors.has(id)
      ) {
        continue;
      }
      this._templatesLoading.add(id);
      api.getTemplate(id).then(
        template => {
          this._templatesLoading.delete(id);
          this._rememberTemplate(template, id);
        },
        error => {
          this._templatesLoading.delete(id);
          if (!this._disposed) {
            const errors = new Map(this._state.templateErrors);
            errors.set(id, errorText(error));
            this._set({ templateErrors: errors });
          }
        }
      );
    }
  }

  private _rememberTemplate(template: ITemplateInfo, id = template.id): void {
    if (this._disposed || this._state.templates.get(id) === template) {
      return;
    }
    // Templates arriving together (one per distinct run) are published in one change.
    this._pendingTemplates.set(id, template);
    if (this._pendingTemplates.size === 1) {
      queueMicrotask(() => {
        if (this._disposed) {
          return;
        }
        const templates = new Map(this._state.templates);
        for (const [key, value] of this._pendingTemplates) {
          templates.set(key, value);
        }
        this._pendingTemplates.clear();
        this._set({ templates });
      });
    }
  }

  private _scheduleValidation(delay = VALIDATE_DELAY_MS): void {
    clearTimeout(this._validateTimer);
    this._validateTimer = setTimeout(() => void this._validate(), delay);
  }

  private async _validate(): Promise<void> {
    const spec = this._state.spec;
    if (!spec || this._disposed) {
      return;
    }
    this._validateAbort?.abort();
    const controller = new AbortController();
    this._validateAbort = controller;
    try {
      const issues = await api.validatePipeline(
        spec,
        this.path,
        controller.signal
      );
      if (!controller.signal.aborted && this._state.spec === spec) {
        this._set({ issues, validation: 'ok' });
      }
    } catch (error) {
      if (!controller.signal.aborted) {
        this._set({ issues: [], validation: 'unavailable' });
      }
    }
  }

  private _refuse(text: string): false {
    this.say(text, 'error');
    return false;
  }

  private _onEvents(events: IRunEvent[]): void {
    const view = this._state.runView;
    let pinnedChanged = false;
    for (const event of events) {
      // `PATCH /runs/{id}` writes {fields: [...]}; a deleted run {deleted: true}.
      const data = (event.data ?? {}) as Record<string, unknown>;
      if (
        event.type === 'run' &&
        ((Array.isArray(data.fields) && data.fields.includes('pinned')) ||
          data.deleted === true)
      ) {
        pinnedChanged = true;
      }
    }
    if (pinnedChanged) {
      void this.refreshPinned();
    }
    if (!view) {
      return;
    }
    const stageRuns = new Set<string>();
    for (const status of Object.values(view.detail?.stages ?? {})) {
      if (status.run_id) {
        stageRuns.add(status.run_id);
      }
    }
    let stages: Record<string, IStageStatus> | null = null;
    let refresh = false;
    for (const event of events) {
      const data = (event.data ?? {}) as Record<string, unknown>;
      if (event.type === 'pipeline' && data.pipeline_run_id === view.id) {
        refresh = true;
        const stage = data.stage;
        const status = data.status;
        if (
          typeof stage === 'string' &&
          typeof status === 'string' &&
          view.detail
        ) {
          // The colour changes now; the detail (run id, times, progress) follows.
          stages = stages ?? { ...view.detail.stages };
          this._stageEventSeq.set(stage, ++this._refreshSeq);
          stages[stage] = { ...(stages[stage] ?? {}), status };
          if (status === 'running' && !stages[stage].started_at) {
            stages[stage].started_at = event.time;
          }
        }
      } else if (event.run_id && stageRuns.has(event.run_id)) {
        refresh = true;
      }
    }
    if (stages && view.detail) {
      this._set({
        runView: { ...view, detail: { ...view.detail, stages } }
      });
    }
    if (refresh) {
      this._scheduleRefresh();
    }
  }

  private _scheduleRefresh(): void {
    if (this._refreshTimer) {
      return;
    }
    this._refreshTimer = setTimeout(() => {
      this._refreshTimer = undefined;
      void this._refresh();
    }, REFRESH_DELAY_MS);
  }

  private async _refresh(): Promise<void> {
    const view = this._state.runView;
    if (!view || this._disposed) {
      return;
    }
    const seq = this._refreshSeq;
    let detail: IPipelineRunDetail;
    try {
      detail = await api.getPipelineRun(view.id);
    } catch (error) {
      const current = this._state.runView;
      if (current && current.id === view.id) {
        this._set({ runView: { ...current, error: errorText(error) } });
      }
      return;
    }
    const current = this._state.runView;
    if (!current || current.id !== view.id || this._disposed) {
      return;
    }
    // A stage whose state an event changed while this was in flight keeps the newer state.
    for (const [stage, eventSeq] of this._stageEventSeq) {
      const known = current.detail?.stages[stage];
      if (eventSeq > seq && known && detail.stages?.[stage]) {
        detail.stages[stage] = {
          ...detail.stages[stage],
          status: known.status
        };
      }
    }
    this._set({
      runView: {
        ...current,
        detail: keepIdentity(current.detail, detail),
        error: null
      }
    });
    if (current.live && isFinished(detail)) {
      this._stopWatching();
      this._set({ runView: { ...this._state.runView!, live: false } });
      void this.refreshHistory();
    }
  }

  private _stopWatching(): void {
    clearInterval(this._poll);
    this._poll = undefined;
    clearTimeout(this._refreshTimer);
    this._refreshTimer = undefined;
  }

  private _state: IPipelineState;
  private _stateChanged = new Signal<this, IPipelineState>(this);
  private _disposed = false;
  private _undo: IPipelineSpec[] = [];
  private _redo: IPipelineSpec[] = [];
  private _lastText: string | null = null;
  private _changedOutside = false;
  private _diskText: string | null = null;
  private _templatesLoading = new Set<string>();
  private _pendingTemplates = new Map<string, ITemplateInfo>();
  private _validateTimer: ReturnType<typeof setTimeout> | undefined;
  private _validateAbort: AbortController | null = null;
  private _refreshTimer: ReturnType<typeof setTimeout> | undefined;
  private _refreshSeq = 0;
  private _stageEventSeq = new Map<string, number>();
  private _poll: ReturnType<typeof setInterval> | undefined;
  private _messageSeq = 0;
  private _events: IDisposable;
  private _openRun: ((id: string) => boolean) | null;
}

/** A run whose pipeline or every stage reached a final state. */
export function isFinished(detail: IPipelineRunDetail): boolean {
  if (FINAL_RUN_STATES.has(detail.status)) {
    return true;
  }
  const states = Object.values(detail.stages ?? {});
  return (
    states.length > 0 &&
    states.every(s => FINAL_STAGE_STATES.has(String(s.status))) &&
    detail.status !== 'running' &&
    detail.status !== 'queued'
  );
}

/** The new detail, with the stage objects that did not change kept (memoized nodes). */
function keepIdentity(
  prev: IPipelineRunDetail | null,
  next: IPipelineRunDetail
): IPipelineRunDetail {
  if (!prev || prev.id !== next.id) {
    return next;
  }
  const stages: Record<string, IStageStatus> = {};
  for (const [name, status] of Object.entries(next.stages ?? {})) {
    const old = prev.stages?.[name];
    stages[name] = old && S.jsonEqual(old, status) ? old : status;
  }
  return { ...next, stages };
}

const PLAIN_TYPES = new Set(['int', 'float', 'str', 'bool', 'list', 'dict']);

export const AFTER_IN = 'after-in';
export const AFTER_OUT = 'after-out';

export function inHandle(param: string): string {
  return 'in:' + param;
}

export function outHandle(output: string): string {
  return 'out:' + output;
}

function portName(handle: string | null, kind: 'in' | 'out'): string | null {
  const prefix = kind + ':';
  return handle && handle.startsWith(prefix)
    ? handle.slice(prefix.length)
    : null;
}

/** Edge ids: `ref|source|output|target|param` and `after|source|target`. */
export function refEdgeId(
  source: string,
  output: string,
  target: string,
  param: string
): string {
  return ['ref', source, output, target, param]
    .map(encodeURIComponent)
    .join('|');
}

export function afterEdgeId(source: string, target: string): string {
  return ['after', source, target].map(encodeURIComponent).join('|');
}

export type EdgeRef =
  | {
      kind: 'ref';
      source: string;
      output: string;
      target: string;
      param: string;
    }
  | { kind: 'after'; source: string; target: string };

export function parseEdgeId(id: string): EdgeRef | null {
  const parts = id.split('|').map(decodeURIComponent);
  if (parts[0] === 'ref' && parts.length === 5) {
    return {
      kind: 'ref',
      source: parts[1],
      output: parts[2],
      target: parts[3],
      param: parts[4]
    };
  }
  if (parts[0] === 'after' && parts.length === 3) {
    return { kind: 'after', source: parts[1], target: parts[2] };
  }
  return null;
}

export function errorText(error: unknown): string {
  if (error instanceof Error) {
    return error.message;
  }
  return String(error);
}
