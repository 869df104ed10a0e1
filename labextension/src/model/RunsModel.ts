/**
 * The runs panel's state: the loaded rows (pinned runs first), filter, sort, selection, paging,
 * and live updates from the event feed. Components read it and call its methods; it never polls
 * the full list: the feed says which runs changed and only those rows are fetched again.
 */
import { ISignal, Signal } from '@lumino/signaling';

import {
  ApiError,
  errorText,
  EventFeed,
  IFieldHint,
  IRun,
  IRunEvent,
  listRuns,
  quoteFilter
} from '../api';
import { Identity } from './Identity';
import { LiveModel } from './LiveModel';
import { applyRunChange, RunChange } from './runActions';
import { comparator, DEFAULT_SORT, formatSort, parseSort } from './sort';

/** Rows of the first page: enough to fill any sidebar, small enough to paint at once. */
export const FIRST_PAGE = 150;
/** Rows of each following page, fetched as the user scrolls towards the end. */
export const NEXT_PAGE = 500;
/** Pinned runs are few: one request gets them all (up to this many). */
export const PINNED_LIMIT = 200;
/** A filter error is shown once typing pauses this long (a half-typed filter is not an error). */
export const FILTER_ERROR_DELAY_MS = 350;
/** Runs whose status changed are fetched again after this long (events arrive in bursts). */
const RUN_EVENT_DELAY_MS = 150;
/** Runs that logged metrics or cells are fetched again at most this often. */
const RECORD_EVENT_DELAY_MS = 1000;
/** Changed rows are fetched in one request of up to this many ids. */
const REFETCH_CHUNK = 50;
/** Metric columns picked when the settings name none. */
const AUTO_METRIC_COLUMNS = 3;

/** Columns of the runs table the user can show or hide. */
export type OptionalColumn =
  'owner' | 'kind' | 'stage' | 'parent' | 'cells' | 'duration' | 'created';

export const OPTIONAL_COLUMNS: readonly OptionalColumn[] = [
  'owner',
  'kind',
  'stage',
  'parent',
  'cells',
  'duration',
  'created'
];

export interface IFilterError {
  message: string;
  /** 0-based character offset in the filter text, when the server named one. */
  position: number | null;
}

/** Whose runs the panel lists in a team's store: this user's, or everyone's. */
export type RunScope = 'mine' | 'team';

export interface IRunsModelOptions {
  feed: EventFeed | null;
  project?: string;
  metricColumns?: string[];
  /** Who this user is (the Mine filter, the Owner column, the actions offered). */
  identity?: Identity;
  scope?: RunScope;
  /** Rows of the first and following pages. */
  pageSizes?: { first: number; next: number };
}

/** A filter for exactly these runs, combined with the user's filter. */
export function idsFilter(ids: string[], filter: string): string {
  const ids_ = ids.map(id => `id = "${id.replace(/["\\]/g, '')}"`).join(' or ');
  return filter.trim() ? `(${ids_}) and (${filter})` : ids_;
}

function pinnedFilter(filter: string): string {
  return filter.trim() ? `pinned = true and (${filter})` : 'pinned = true';
}

/**
 * What the list asks the server for: the user's filter as typed, narrowed to `owner`'s runs
 * (Mine), and where in it the user's text starts (a filter error's position is the user's).
 */
export function scopedFilter(
  filter: string,
  owner: string | null
): { filter: string; offset: number } {
  if (owner === null) {
    return { filter, offset: 0 };
  }
  const mine = `owner = ${quoteFilter(owner)}`;
  if (!filter.trim()) {
    return { filter: mine, offset: 0 };
  }
  const prefix = `${mine} and (`;
  return { filter: `${prefix}${filter})`, offset: prefix.length };
}

/** A filter word as the server's tokenizer reads it: a record key needs no quotes if it is one. */
const BARE_KEY = /^[\w\-/:.]+$/;

/**
 * `field` (`metrics.K`, as a hint names it) written as a filter names it: `metrics.K`, or
 * `metrics."K"` where K is not a bare word.
 */
export function filterField(field: string): string {
  const dot = field.indexOf('.');
  const key = field.slice(dot + 1);
  return dot < 0 || BARE_KEY.test(key)
    ? field
    : `${field.slice(0, dot)}.${quoteFilter(key)}`;
}

/**
 * The filter with each mention of the record field `field` (`metrics.acuracy`; the head in any
 * case, the key as is, bare or quoted) replaced by `replacement`; quoted strings are left alone.
 */
export function replaceField(
  filter: string,
  field: string,
  replacement: string
): string {
  const word =
    /("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|(?<![\w\-/:.])([A-Za-z_][\w\-/:]*)\.([\w\-/:.]+|"(?:[^"\\]|\\.)*")/g;
  return filter.replace(
    word,
    (match: string, quoted?: string, head?: string, key?: string) => {
      if (quoted !== undefined || head === undefined || key === undefined) {
        return match;
      }
      const bare = key.startsWith('"') ? unquote(key) : key;
      return `${head.toLowerCase()}.${bare}` === field ? replacement : match;
    }
  );
}

function unquote(text: string): string {
  return text.slice(1, -1).replace(/\\(.)/g, '$1');
}

export class RunsModel extends LiveModel {
  constructor(options: IRunsModelOptions) {
    super(options.feed);
    this._project = options.project ?? '';
    this._configuredColumns = options.metricColumns ?? [];
    this.identity = options.identity ?? null;
    this._scope = options.scope ?? 'team';
    if (this.identity && !this.identity.team) {
      this._hiddenColumns.add('owner');
    }
    this._pageSizes = options.pageSizes ?? {
      first: FIRST_PAGE,
      next: NEXT_PAGE
    };
  }

  /** Who this user is (null: no identity, everything is offered). */
  readonly identity: Identity | null;

  /** Whose runs are listed (Mine only applies in a team's store). */
  get scope(): RunScope {
    return this._scope;
  }

  /** Whether the list is narrowed to this user's runs now. */
  get mineOnly(): boolean {
    return this._scope === 'mine' && !!this.identity?.team;
  }

  /** Emitted when the user picks Mine or Team (the choice is kept in the settings). */
  get scopeChanged(): ISignal<this, RunScope> {
    return this._scopeChanged;
  }

  /** List this user's runs only, or the team's. */
  setScope(scope: RunScope): void {
    if (scope === this._scope) {
      return;
    }
    this._scope = scope;
    this._scopeChanged.emit(scope);
    this._refreshIfStarted();
  }

  /** The store became (or stopped being) a team's: the Owner column follows unless chosen. */
  identityChanged(): void {
    if (!this._ownerColumnChosen) {
      if (this.identity?.team) {
        this._hiddenColumns.delete('owner');
      } else {
        this._hiddenColumns.add('owner');
      }
    }
    this._refreshIfStarted();
  }

  /** Pinned runs first, then the others in the sort order; as loaded so far. */
  get rows(): readonly IRun[] {
    if (this._rows === null) {
      const pinnedIds = new Set(this._pinned.map(r => r.id));
      this._rows = [
        ...this._pinned,
        ...this._main.filter(r => !pinnedIds.has(r.id))
      ];
    }
    return this._rows;
  }

  /** The filter text as typed. */
  get filter(): string {
    return this._filter;
  }

  /** The filter of the rows shown (the last one the server accepted), as the user typed it. */
  get appliedFilter(): string {
    return this._appliedFilter;
  }

  /** Whether the rows shown are this user's only (Mine, as last loaded). */
  get appliedMine(): boolean {
    return this._appliedMine;
  }

  /** Why the server refused the filter, shown once typing paused. */
  get filterError(): IFilterError | null {
    return this._shownFilterError;
  }

  get sort(): string {
    return this._sort;
  }

  get project(): string {
    return this._project;
  }

  /** The first page is on its way (for the current filter and sort). */
  get loading(): boolean {
    return this._loading;
  }

  /** Why the runs could not be loaded (not a filter error). */
  get loadError(): string | null {
    return this._loadError;
  }

  /** Why the last action (pin) failed. */
  get actionError(): string | null {
    return this._actionError;
  }

  /** There are rows after the loaded ones. */
  get hasMore(): boolean {
    return this._next !== null;
  }

  get loadingMore(): boolean {
    return this._loadingMore;
  }

  /** Whether the first load happened (an empty list before it means "not loaded yet"). */
  get loaded(): boolean {
    return this._loaded;
  }

  get selection(): ReadonlySet<string> {
    return this._selection;
  }

  /** The metric columns to show: the configured ones, else the first few metrics seen. */
  get metricColumns(): string[] {
    let columns = this._configuredColumns;
    if (!columns.length) {
      const seen = new Set<string>();
      for (const run of this.rows.slice(0, 200)) {
        for (const key of Object.keys(run.metrics ?? {})) {
          seen.add(key);
        }
      }
      columns = [...seen].sort().slice(0, AUTO_METRIC_COLUMNS);
    }
    const { field } = parseSort(this._sort);
    if (field.startsWith('metrics.') && !columns.includes(field.slice(8))) {
      columns = [...columns, field.slice(8)];
    }
    return columns;
  }

  /**
   * Whether the optional column `id` (kind, stage, parent, cells, created, duration) shows. The
   * stage column shows while a listed run is a pipeline stage, unless chosen in the menu: empty,
   * it took the room the run names need (a sweep's trials read alike, cut before their `#N`).
   */
  isColumnShown(id: OptionalColumn): boolean {
    if (this._hiddenColumns.has(id)) {
      return false;
    }
    return id !== 'stage' || this._stageColumnChosen || this.hasStages;
  }

  /** Whether a listed run (of the first 200) is a pipeline stage. */
  get hasStages(): boolean {
    return this.rows.slice(0, 200).some(r => !!r.stage);
  }

  /** Show or hide an optional column (the panel's Columns menu). */
  toggleColumn(id: OptionalColumn, shown?: boolean): void {
    const on = shown ?? !this.isColumnShown(id);
    if (id === 'owner') {
      this._ownerColumnChosen = true;
    }
    if (id === 'stage') {
      this._stageColumnChosen = true;
    }
    if (on) {
      this._hiddenColumns.delete(id);
    } else {
      this._hiddenColumns.add(id);
    }
    this._emit();
  }

  /**
   * The server's hints for the rows shown: the `metrics.K` / `params.K` / `outputs.K` that no
   * run has, named by the sort or by a filter that matched nothing, with close names that exist.
   * Cleared when another query starts; a hint whose field a row shown has since (a run logged it
   * live) is dropped.
   */
  get hints(): IFieldHint[] {
    if (!this._hints.length) {
      return this._hints;
    }
    return this._hints.filter(hint => {
      const dot = hint.field.indexOf('.');
      const head = hint.field.slice(0, dot);
      const key = hint.field.slice(dot + 1);
      if (head !== 'metrics' && head !== 'params') {
        return true; // listing rows carry no outputs
      }
      return !this.rows.some(run => {
        const values = head === 'metrics' ? run.metrics : run.params;
        return !!values && Object.prototype.hasOwnProperty.call(values, key);
      });
    });
  }

  /**
   * Take a hint's suggestion: `suggestion` in place of the hint's field, in the filter and in
   * the sort (wherever it is named).
   */
  applySuggestion(hint: IFieldHint, suggestion: string): void {
    const sort = parseSort(this._sort);
    const filter = replaceField(
      this._filter,
      hint.field,
      filterField(suggestion)
    );
    if (sort.field === hint.field) {
      // one query for both: the filter's change alone would start one too
      this._filter = filter;
      this.setSort(formatSort({ ...sort, field: suggestion }));
    } else {
      this.setFilter(filter);
    }
  }

  /** Whether listed runs carry GPU figures (then the panel shows a GPU column). */
  get hasGpuFigures(): boolean {
    return this.rows
      .slice(0, 200)
      .some(r => !!r.gpu?.run && Object.keys(r.gpu.run).length > 0);
  }

  /** How many cells a run has executed, when known. */
  cellCount(run: IRun): number | null {
    return this._cellCounts.get(run.id) ?? run.cells ?? null;
  }

  /** The first load; later loads happen when the filter, sort or project change. */
  start(): void {
    if (!this._loaded && !this._loading) {
      this.refresh();
    }
  }

  setFilter(text: string): void {
    if (text === this._filter) {
      return;
    }
    this._filter = text;
    this._emit();
    this._refreshIfStarted();
  }

  setSort(sort: string): void {
    const next = sort || DEFAULT_SORT;
    if (next === this._sort) {
      return;
    }
    this._sort = next;
    this._refreshIfStarted();
  }

  setProject(project: string): void {
    if (project === this._project) {
      return;
    }
    this._project = project;
    this._refreshIfStarted();
  }

  setMetricColumns(columns: string[]): void {
    this._configuredColumns = columns;
    this._emit();
  }

  toggleSelected(id: string, selected?: boolean): void {
    const on = selected ?? !this._selection.has(id);
    if (on) {
      this._selection.add(id);
    } else {
      this._selection.delete(id);
    }
    this._emit();
  }

  clearSelection(): void {
    if (this._selection.size) {
      this._selection.clear();
      this._emit();
    }
  }

  private _refreshIfStarted(): void {
    if (this._loaded || this._loading) {
      this.refresh();
    } else {
      this._emit();
    }
  }

  /** Load the first page (and the pinned runs) again for the current filter, sort and project. */
  refresh(): void {
    this._controller?.abort();
    const controller = new AbortController();
    this._controller = controller;
    const generation = ++this._generation;
    const filter = this._filter;
    const mine = this.mineOnly ? (this.identity?.me.name ?? null) : null;
    const scoped = scopedFilter(filter, mine);
    const base = { project: this._project || undefined, sort: this._sort };
    this._loading = true;
    this._loadingMore = false;
    this._pending.clear();
    this._hints = []; // the last query's: never shown for this one
    this._emit();
    const main = listRuns(
      { ...base, filter: scoped.filter, limit: this._pageSizes.first },
      controller.signal
    );
    const pinned = listRuns(
      { ...base, filter: pinnedFilter(scoped.filter), limit: PINNED_LIMIT },
      controller.signal
    ).catch(() => null); // the main request reports the error
    Promise.all([main, pinned]).then(
      ([page, pinnedPage]) => {
        if (generation !== this._generation) {
          return;
        }
        this._main = page.runs;
        this._pinned = (pinnedPage?.runs ?? []).filter(r => r.pinned);
        this._next = page.next;
        // a later page's hints are this query's (the server sends them with the first only)
        this._hints = page.hints ?? [];
        this._appliedFilter = filter;
        this._requestFilter = scoped.filter;
        this._appliedMine = mine !== null;
        this._loaded = true;
        this._loading = false;
        this._loadError = null;
        this._setFilterError(null);
        this._reindex();
      },
      (error: unknown) => {
        if (generation !== this._generation || controller.signal.aborted) {
          return;
        }
        this._loading = false;
        if (error instanceof ApiError && error.status === 400) {
          // Keep the last good rows: a half-typed filter should not blank the list.
          this._setFilterError({
            message: error.message,
            position:
              error.position === null
                ? null
                : Math.max(0, error.position - scoped.offset)
          });
        } else {
          this._loaded = true;
          this._loadError = errorText(error);
        }
        this._emit();
      }
    );
  }

  /** Fetch the next page (called as the user scrolls near the end). */
  loadMore(): void {
    if (this._next === null || this._loadingMore || this._loading) {
      return;
    }
    const generation = this._generation;
    const signal = this._controller?.signal;
    this._loadingMore = true;
    this._emit();
    listRuns(
      {
        project: this._project || undefined,
        sort: this._sort,
        filter: this._requestFilter,
        limit: this._pageSizes.next,
        cursor: this._next
      },
      signal
    ).then(
      page => {
        if (generation !== this._generation) {
          return;
        }
        const known = new Set(this._main.map(r => r.id));
        this._main = this._main.concat(page.runs.filter(r => !known.has(r.id)));
        this._next = page.next;
        this._loadingMore = false;
        this._reindex();
      },
      (error: unknown) => {
        if (generation !== this._generation) {
          return;
        }
        this._loadingMore = false;
        this._loadError = errorText(error);
        this._emit();
      }
    );
  }

  /** Pin or unpin a run: shown at once, written to the server, undone if that fails. */
  setPinned(id: string, pinned: boolean): Promise<boolean> {
    return this.change(id, { kind: 'pin', pinned });
  }

  /**
   * Change a run from the panel (its row, its context menu): a pin shows at once and is undone
   * if the server refuses; a refusal's message (a run of someone else's: 403) is shown in the
   * panel. Whether it went through.
   */
  async change(id: string, change: RunChange): Promise<boolean> {
    const run = this._byId.get(id);
    if (run && change.kind === 'pin') {
      this._place({ ...run, pinned: change.pinned });
    }
    this._actionError = null;
    this._emit();
    try {
      const changed = await applyRunChange(id, change);
      if (change.kind === 'delete') {
        this._remove(id);
      } else if (changed && this._byId.has(id)) {
        this._place(this._summary(changed));
      } else if (this._byId.has(id)) {
        this._pending.add(id);
        this._scheduleRefetch(RUN_EVENT_DELAY_MS);
      }
      return true;
    } catch (error) {
      if (run && change.kind === 'pin') {
        this._place(run);
      }
      this._actionError = errorText(error);
      this.identity?.noteRefusal(error);
      this._emit();
      return false;
    }
  }

  /** Say why an action on a run started from the panel failed (null: clear it). */
  setActionError(message: string | null): void {
    this._actionError = message;
    this._emit();
  }

  getRun(id: string): IRun | undefined {
    return this._byId.get(id);
  }

  dispose(): void {
    this._controller?.abort();
    this._refetchController?.abort();
    super.dispose();
  }

  // --- live updates ------------------------------------------------------------------------------

  protected onEvents(events: IRunEvent[]): void {
    if (!this._loaded) {
      return;
    }
    let soon = false;
    let dirty = false;
    for (const event of events) {
      const id = event.run_id;
      if (!id) {
        continue;
      }
      switch (event.type) {
        case 'run':
          if (event.data.deleted) {
            dirty = this._remove(id) || dirty;
            this._pending.delete(id);
          } else {
            this._pending.add(id);
            soon = true;
          }
          break;
        case 'cells': {
          const seq = Number(event.data.last_seq);
          if (Number.isFinite(seq) && seq > (this._cellCounts.get(id) ?? 0)) {
            this._cellCounts.set(id, seq);
            dirty = dirty || this._byId.has(id);
          }
          break;
        }
        default:
          // metrics / params / outputs: only rows on screen need their new values.
          if (this._byId.has(id)) {
            this._pending.add(id);
          }
      }
    }
    if (dirty) {
      this._emit();
    }
    if (this._pending.size) {
      this._scheduleRefetch(soon ? RUN_EVENT_DELAY_MS : RECORD_EVENT_DELAY_MS);
    }
  }

  private _scheduleRefetch(delay: number): void {
    this._refetchLater.schedule(delay);
  }

  /**
   * Fetch the rows of the runs that changed, through the listing with the current filter: a run
   * that the filter no longer matches leaves the list, a new one that it matches comes in.
   */
  private async _refetch(): Promise<void> {
    if (this._refetching) {
      this._scheduleRefetch(RUN_EVENT_DELAY_MS);
      return;
    }
    const ids = [...this._pending].slice(0, REFETCH_CHUNK);
    ids.forEach(id => this._pending.delete(id));
    if (!ids.length) {
      return;
    }
    const generation = this._generation;
    const controller = new AbortController();
    this._refetchController = controller;
    this._refetching = true;
    try {
      const page = await listRuns(
        {
          project: this._project || undefined,
          sort: this._sort,
          filter: idsFilter(ids, this._requestFilter),
          limit: ids.length
        },
        controller.signal
      );
      if (generation !== this._generation || this.isDisposed) {
        return;
      }
      const found = new Map(page.runs.map(r => [r.id, r]));
      for (const id of ids) {
        const run = found.get(id);
        if (run) {
          this._place(run, false);
        } else {
          this._remove(id, false);
        }
      }
      this._reindex();
    } catch {
      // The next event (or a refresh) brings the row; a failed refetch is not worth a message.
    } finally {
      this._refetching = false;
      if (this._pending.size) {
        this._scheduleRefetch(RUN_EVENT_DELAY_MS);
      }
    }
  }

  /** Put a run where the sort order puts it (pinned runs in their own list). */
  private _place(run: IRun, reindex = true): void {
    const compare = comparator(this._sort);
    const without = (list: IRun[]) => list.filter(r => r.id !== run.id);
    const insert = (list: IRun[], open: boolean): IRun[] => {
      const index = list.findIndex(r => compare(run, r) < 0);
      if (index === -1) {
        // After every loaded row: it belongs to a page not loaded yet.
        return open ? list : [...list, run];
      }
      return [...list.slice(0, index), run, ...list.slice(index)];
    };
    this._pinned = without(this._pinned);
    this._main = without(this._main);
    if (run.pinned) {
      this._pinned = insert(this._pinned, false);
    } else {
      this._main = insert(this._main, this._next !== null);
    }
    if (reindex) {
      this._reindex();
    }
  }

  private _remove(id: string, reindex = true): boolean {
    if (!this._byId.has(id)) {
      return false;
    }
    this._pinned = this._pinned.filter(r => r.id !== id);
    this._main = this._main.filter(r => r.id !== id);
    this._selection.delete(id);
    if (reindex) {
      this._reindex();
    }
    return true;
  }

  /** A full run (from PATCH) trimmed to what a listing row carries (the listing's own
   * refetch, which the pin's event triggers, brings whatever else a row has). */
  private _summary(run: IRun): IRun {
    const { outputs, env, git, gpu, ...row } = run;
    void outputs;
    void env;
    void git;
    void gpu;
    return row;
  }

  private _reindex(): void {
    this._rows = null;
    this._byId = new Map();
    for (const run of this._main) {
      this._byId.set(run.id, run);
    }
    for (const run of this._pinned) {
      this._byId.set(run.id, run);
    }
    this._emit();
  }

  private _setFilterError(error: IFilterError | null): void {
    this._pendingFilterError = error;
    if (error === null) {
      this._errorLater.cancel();
      this._shownFilterError = null;
      return;
    }
    this._errorLater.restart(FILTER_ERROR_DELAY_MS);
  }

  private _emit(): void {
    this._rows = null;
    this.emit();
  }

  private _refetchLater = this.later(() => this._refetch());
  private _errorLater = this.later(() => {
    this._shownFilterError = this._pendingFilterError;
    this._emit();
  });
  private _pendingFilterError: IFilterError | null = null;
  private _hiddenColumns = new Set<OptionalColumn>(['parent']);
  private _hints: IFieldHint[] = [];
  private _project: string;
  private _configuredColumns: string[];
  private _pageSizes: { first: number; next: number };
  private _filter = '';
  private _appliedFilter = '';
  /** What the rows shown were asked for (the user's filter, narrowed to Mine). */
  private _requestFilter = '';
  private _appliedMine = false;
  private _scope: RunScope;
  private _scopeChanged = new Signal<this, RunScope>(this);
  private _ownerColumnChosen = false;
  private _stageColumnChosen = false;
  private _shownFilterError: IFilterError | null = null;
  private _sort = DEFAULT_SORT;
  private _main: IRun[] = [];
  private _pinned: IRun[] = [];
  private _rows: IRun[] | null = null;
  private _byId = new Map<string, IRun>();
  private _next: string | null = null;
  private _loaded = false;
  private _loading = false;
  private _loadingMore = false;
  private _loadError: string | null = null;
  private _actionError: string | null = null;
  private _generation = 0;
  private _controller: AbortController | null = null;
  private _selection = new Set<string>();
  private _cellCounts = new Map<string, number>();
  private _pending = new Set<string>();
  private _refetching = false;
  private _refetchController: AbortController | null = null;
}
