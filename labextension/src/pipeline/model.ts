/**
 * The state of one open pipeline editor, outside React: the document (the spec parsed from and
 * written back to the text model, which stays the one source of truth), undo/redo, the edits and
 * server validation; with the stage templates and pinned runs (./templates.ts) and the file's
 * runs (./runs.ts). Components read `state` (an immutable snapshot that changes identity on every
 * change) and call the methods; they never fetch.
 */
import { PageConfig } from '@jupyterlab/coreutils';
import { DocumentRegistry } from '@jupyterlab/docregistry';
import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import {
  errorText,
  EventFeed,
  IMe,
  IRun,
  ITemplateInfo,
  IValidationIssue,
  listRunsOfNotebook,
  validatePipeline
} from '../api';
import { Identity } from '../model/Identity';
import { Later } from '../model/LiveModel';
import { IPipelineRunsState, PipelineRuns } from './runs';
import * as S from './spec';
import { IPipelineSpec, IStageSpec, JSONValue } from './spec';
import { ITemplatesState, StageTemplates } from './templates';

export {
  FINAL_RUN_STATES,
  FINAL_STAGE_STATES,
  isFinished,
  type IRunView
} from './runs';

export interface IMessage {
  text: string;
  level: 'error' | 'info';
  /** Distinguishes two equal messages in a row (the banner re-announces). */
  seq: number;
}

export interface IPipelineState extends ITemplatesState, IPipelineRunsState {
  ready: boolean;
  spec: IPipelineSpec | null;
  /** Why the file could not be read as a pipeline (then `spec` is null). */
  parseError: string | null;
  warning: string | null;
  issues: readonly IValidationIssue[];
  /** null: not validated yet; else when the server could not validate, why. */
  validation: 'pending' | 'ok' | 'unavailable';
  message: IMessage | null;
  selected: string | null;
  canUndo: boolean;
  canRedo: boolean;
  /** Who this user is (owners shown in a team's store; Cancel run only on their own). */
  me: IMe | null;
}

const HISTORY_LIMIT = 200;
const VALIDATE_DELAY_MS = 400;

export interface IPipelineModelOptions {
  context: DocumentRegistry.Context;
  /** Opens a run in the main area (the runs UI's command), if there is one. */
  openRun?: (id: string) => boolean;
  /** The page's event feed (stage colours, history and pinned runs follow it). */
  feed: EventFeed | null;
  /** Who this user is (none: a single seat, everything offered). */
  identity?: Identity | null;
}

export class PipelineModel implements IDisposable {
  constructor(options: IPipelineModelOptions) {
    this.context = options.context;
    this._openRun = options.openRun ?? null;
    this.identity = options.identity ?? null;
    this.templates = new StageTemplates(options.feed);
    this.runs = new PipelineRuns(options.feed, () => this.path);
    this._state = {
      ready: false,
      spec: null,
      parseError: null,
      warning: null,
      ...this.templates.state,
      ...this.runs.state,
      issues: [],
      validation: 'pending',
      message: null,
      selected: null,
      canUndo: false,
      canRedo: false,
      me: this.identity?.loaded ? this.identity.me : null
    };
    if (this.identity) {
      this.identity.changed.connect(this._onIdentity, this);
      void this.identity.load();
    }
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
    this.templates.changed.connect(() => this._set(this.templates.state));
    this.runs.changed.connect(() => this._set(this.runs.state));
  }

  readonly context: DocumentRegistry.Context;
  readonly identity: Identity | null;
  /** The stage templates and the pinned runs. */
  readonly templates: StageTemplates;
  /** The runs of this file: history and the one on the canvas. */
  readonly runs: PipelineRuns;

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
    this.identity?.changed.disconnect(this._onIdentity, this);
    this.templates.dispose();
    this.runs.dispose();
    this._validateAbort?.abort();
    this._validateLater.dispose();
    this._messageLater.dispose();
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
      template = await this.templates.get(runId);
    } catch (error) {
      this.say(`Could not add run ${runId}: ${errorText(error)}`, 'error');
      return null;
    }
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
        notebook: this._notebookPath(template.notebook),
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
      template = await this.templates.get(runId);
    } catch (error) {
      this.say(`Could not load run ${runId}: ${errorText(error)}`, 'error');
      return;
    }
    this.edit(spec =>
      S.updateStage(spec, stage, s => ({
        ...s,
        template: {
          ...s.template,
          run: template.id,
          notebook: this._notebookPath(template.notebook),
          snapshot: template.snapshot
        }
      }))
    );
  }

  /** Runs of the notebook behind a stage's template (to replace it with a newer one). */
  async runsOfNotebook(notebook: string): Promise<IRun[]> {
    return listRunsOfNotebook(notebook);
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

  /** Show a message above the canvas; it goes by itself (errors stay longer). */
  say(text: string, level: 'error' | 'info' = 'info'): void {
    this._set({ message: { text, level, seq: ++this._messageSeq } });
    this._messageLater.restart(level === 'error' ? 15000 : 6000);
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

  refreshPinned(): Promise<void> {
    return this.templates.refreshPinned();
  }

  refreshHistory(): Promise<void> {
    return this.runs.refreshHistory();
  }

  // --- running ---------------------------------------------------------------------------------

  /** Save if dirty, start a run of the file, and follow it on the canvas. */
  async run(
    params: Record<string, JSONValue>,
    executor: string | null,
    noCache: boolean
  ): Promise<string | null> {
    // A message about an earlier edit or run does not belong to this run.
    this.clearMessage();
    try {
      if (this.context.model.dirty) {
        await this.context.save();
      }
      return await this.runs.start({
        path: this.path,
        params,
        no_cache: noCache,
        ...(executor ? { executor } : {})
      });
    } catch (error) {
      this.say(`Could not start the pipeline: ${errorText(error)}`, 'error');
      return null;
    }
  }

  async cancel(): Promise<void> {
    try {
      await this.runs.cancel();
    } catch (error) {
      // A refusal (a pipeline run of someone else's: 403) in the server's words.
      this.say(`Could not cancel: ${errorText(error)}`, 'error');
      this.identity?.noteRefusal(error);
    }
  }

  /** Whether this user may change (cancel) what `owner` owns (no identity: a single seat). */
  mayChange(owner: string | null | undefined): boolean {
    return this.identity?.mayChange(owner) ?? true;
  }

  /** Whether `owner` is this user. */
  isMine(owner: string | null | undefined): boolean {
    return !!this.identity?.isMine(owner);
  }

  private _onIdentity(_: Identity, me: IMe): void {
    this._set({ me });
  }

  /** Show a pipeline run's stage states on the canvas (live: follow it while it runs). */
  show(id: string, live = true): void {
    this.runs.show(id, live);
  }

  /** Back to plain editing: no run's states on the canvas. */
  closeRun(): void {
    this.runs.closeRun();
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

  /** A template's notebook relative to this file's folder (as the file stores it). */
  private _notebookPath(notebook: string | null): string | null {
    return S.notebookPathForSpec(
      notebook,
      this.path,
      PageConfig.getOption('serverRoot')
    );
  }

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
    const ids = new Set<string>();
    for (const stage of Object.values(spec.stages)) {
      const id = stage.template?.run;
      if (typeof id === 'string') {
        ids.add(id);
      }
    }
    this.templates.load(ids);
  }

  private _scheduleValidation(delay = VALIDATE_DELAY_MS): void {
    this._validateLater.restart(delay);
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
      const issues = await validatePipeline(spec, this.path, controller.signal);
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

  private _state: IPipelineState;
  private _stateChanged = new Signal<this, IPipelineState>(this);
  private _disposed = false;
  private _undo: IPipelineSpec[] = [];
  private _redo: IPipelineSpec[] = [];
  private _lastText: string | null = null;
  private _changedOutside = false;
  private _diskText: string | null = null;
  private _validateLater = new Later(() => this._validate());
  private _validateAbort: AbortController | null = null;
  private _messageSeq = 0;
  private _messageLater = new Later(() => this.clearMessage());
  private _openRun: ((id: string) => boolean) | null;
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

export { errorText };
