/**
 * What stages are made of: the template runs behind the stages (typed parameters and outputs,
 * fetched once per page) and the pinned runs the palette offers, kept current by the feed.
 */
import {
  errorText,
  EventFeed,
  getTemplate,
  IRun,
  IRunEvent,
  ITemplateInfo,
  listPinnedRuns
} from '../api';
import { LiveModel } from '../model/LiveModel';

const cache = new Map<string, Promise<ITemplateInfo>>();

/** A template run, fetched once per page (a failure is not kept: the next ask tries again). */
function cachedTemplate(id: string): Promise<ITemplateInfo> {
  let found = cache.get(id);
  if (!found) {
    found = getTemplate(id);
    cache.set(id, found);
    found.catch(() => cache.delete(id));
  }
  return found;
}

export interface ITemplatesState {
  templates: ReadonlyMap<string, ITemplateInfo>;
  templateErrors: ReadonlyMap<string, string>;
  pinned: readonly IRun[] | null;
  pinnedError: string | null;
}

export class StageTemplates extends LiveModel {
  constructor(feed: EventFeed | null) {
    super(feed);
  }

  get state(): ITemplatesState {
    return this._state;
  }

  /** The template of run `id`, fetched if need be (and remembered). */
  async get(id: string): Promise<ITemplateInfo> {
    const template = await cachedTemplate(id);
    this._remember(id, template);
    return template;
  }

  /** Fetch the templates of these runs that are not known yet. */
  load(ids: Iterable<string>): void {
    for (const id of ids) {
      if (
        this._state.templates.has(id) ||
        this._loading.has(id) ||
        this._state.templateErrors.has(id)
      ) {
        continue;
      }
      this._loading.add(id);
      cachedTemplate(id).then(
        template => {
          this._loading.delete(id);
          this._remember(id, template);
        },
        error => {
          this._loading.delete(id);
          const errors = new Map(this._state.templateErrors);
          errors.set(id, errorText(error));
          this._set({ templateErrors: errors });
        }
      );
    }
  }

  async refreshPinned(): Promise<void> {
    try {
      const pinned = await listPinnedRuns(this.signal);
      this._set({ pinned, pinnedError: null });
    } catch (error) {
      if (!this.signal.aborted) {
        this._set({ pinnedError: errorText(error) });
      }
    }
  }

  protected onEvents(events: IRunEvent[]): void {
    // `PATCH /runs/{id}` writes {fields: [...]}; a deleted run {deleted: true}.
    const pinnedChanged = events.some(event => {
      const data = (event.data ?? {}) as Record<string, unknown>;
      return (
        event.type === 'run' &&
        ((Array.isArray(data.fields) && data.fields.includes('pinned')) ||
          data.deleted === true)
      );
    });
    if (pinnedChanged) {
      void this.refreshPinned();
    }
  }

  private _remember(id: string, template: ITemplateInfo): void {
    if (this.isDisposed || this._state.templates.get(id) === template) {
      return;
    }
    // Templates arriving together (one per distinct run) are published in one change.
    this._pending.set(id, template);
    if (this._pending.size === 1) {
      queueMicrotask(() => {
        const templates = new Map(this._state.templates);
        for (const [key, value] of this._pending) {
          templates.set(key, value);
        }
        this._pending.clear();
        this._set({ templates });
      });
    }
  }

  private _set(changes: Partial<ITemplatesState>): void {
    if (this.isDisposed) {
      return;
    }
    this._state = { ...this._state, ...changes };
    this.emit();
  }

  private _state: ITemplatesState = {
    templates: new Map(),
    templateErrors: new Map(),
    pinned: null,
    pinnedError: null
  };
  private _loading = new Set<string>();
  private _pending = new Map<string, ITemplateInfo>();
}
