/**
 * Python type names as the tracker records them for parameters (numpy's included), grouped the
 * way jupyter_mlp/execution/params.py `fit` accepts values for them. One list for the rerun form
 * and the pipeline editor.
 */
export const INT_TYPES: ReadonlySet<string> = new Set([
  'int',
  'int8',
  'int16',
  'int32',
  'int64',
  'uint8',
  'uint16',
  'uint32',
  'uint64',
  'intc',
  'long'
]);

export const FLOAT_TYPES: ReadonlySet<string> = new Set([
  'float',
  'float16',
  'float32',
  'float64',
  'double',
  'longdouble'
]);

export const BOOL_TYPES: ReadonlySet<string> = new Set(['bool', 'bool_']);

export const LIST_TYPES: ReadonlySet<string> = new Set(['list', 'tuple']);
