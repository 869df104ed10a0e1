export { showSweepDialog } from './SweepDialog';
export { SweepWidget } from './widget';
