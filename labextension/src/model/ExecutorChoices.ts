/**
 * The executors a rerun or a pipeline run can go to: fetched here and nowhere else (the rerun
 * form and the pipeline's Run dialog both read this), each with whether it can take jobs now
 * and why not (a Dask executor with no scheduler configured is shown, but cannot be chosen).
 */
import { getExecutors, IExecutor } from '../api';
import { LiveModel } from './LiveModel';

export class ExecutorChoices extends LiveModel {
  constructor() {
    super(null);
  }

  /** null until loaded. */
  get executors(): readonly IExecutor[] | null {
    return this._executors;
  }

  /** The executor chosen (the server's default, if it can take jobs). */
  get chosen(): string | null {
    return this._chosen;
  }

  get loading(): boolean {
    return this._executors === null && this.error === null;
  }

  choose(name: string | null): void {
    const found = this._executors?.find(e => e.name === name);
    if (name === null || (found && found.available !== false)) {
      this._chosen = name;
      this.emit();
    }
  }

  /** Why the chosen executor may not run jobs at once (e.g. not connected), if it says so. */
  get chosenNote(): string | null {
    return this._executors?.find(e => e.name === this._chosen)?.reason ?? null;
  }

  async load(): Promise<void> {
    try {
      const found = await getExecutors(this.signal);
      this._executors = found.executors;
      this._chosen = found.default;
      this.setError(null);
    } catch (error) {
      if (!this.signal.aborted) {
        this._executors = [];
        this.setError(error);
      }
    }
    this.emit();
  }

  private _executors: IExecutor[] | null = null;
  private _chosen: string | null = null;
}
