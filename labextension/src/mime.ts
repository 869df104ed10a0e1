/** The drag data type of a run: rows of the runs sidebar and the palette carry it, the pipeline canvas accepts it. */
export const RUN_MIME = 'application/x-mlp-run';
