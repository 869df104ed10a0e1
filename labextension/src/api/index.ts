/**
 * The typed client of the jupyter-mlp server routes: the only place the front end talks to the
 * server. Components never import it; models do.
 */
export * from './client';
export * from './executors';
export * from './feed';
export * from './me';
export * from './pipelines';
export * from './runs';
export * from './types';
