import { TranslationBundle } from '@jupyterlab/translation';
import { Token } from '@lumino/coreutils';
import { ISignal } from '@lumino/signaling';

import { EventFeed } from './api';
import { Identity } from './model/Identity';
import { RunScope, RunsModel } from './model/RunsModel';

/** The settings of `schema/plugin.json`. */
export interface IMlpSettings {
  /** The project the panel lists ('' = all). */
  defaultProject: string;
  /** Metric columns of the panel ([] = the first few metrics seen). */
  metricColumns: string[];
  /** Follow the event feed. */
  liveUpdates: boolean;
  /** In a team's store: list this user's runs only, or everyone's (Mine / Team). */
  runScope: RunScope;
}

export const DEFAULT_SETTINGS: IMlpSettings = {
  defaultProject: '',
  metricColumns: [],
  liveUpdates: true,
  runScope: 'team'
};

/** What the jupyter-mlp plugins share: one event feed, the runs panel's model, the settings. */
export interface IMlp {
  readonly feed: EventFeed;
  readonly runs: RunsModel;
  /** Who this user is for the server, and what they may change. */
  readonly identity: Identity;
  readonly trans: TranslationBundle;
  readonly settings: IMlpSettings;
  readonly settingsChanged: ISignal<IMlp, IMlpSettings>;
}

export const IMlp = new Token<IMlp>(
  'jupyter-mlp:IMlp',
  'The jupyter-mlp event feed, runs model and settings.'
);
