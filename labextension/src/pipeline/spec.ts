/**
 * The `.mlpipe` file (jupyter_mlp/pipelines/pipeline.schema.json is the contract): parsing,
 * diff-friendly serialization, references (`${stage.outputs.name}`, `${pipeline.name}`) and the
 * pure edits the editor makes. Every edit returns a new spec that shares the objects it did not
 * change, so undo is a stack of specs and unchanged stages keep their identity (memoized nodes).
 * Fields this module does not know are carried along untouched.
 */

import {
  describeKind,
  expectedKind,
  fits,
  pythonType,
  typeKind
} from '../paramTypes';

export { describeKind, expectedKind, fits, pythonType };

export const FORMAT = 'jupyter-mlp.pipeline';
export const FORMAT_VERSION = 1;

/** A JSON value (parameters and output values are JSON data). */
export type JSONValue =
  null | boolean | number | string | JSONValue[] | { [key: string]: JSONValue };

export interface IXY {
  x: number;
  y: number;
  [key: string]: unknown;
}

export interface ITemplateRef {
  /** The run this stage reruns. */
  run: string;
  notebook?: string | null;
  snapshot?: string | null;
  [key: string]: unknown;
}

export interface IStageSpec {
  template: ITemplateRef;
  parameters?: Record<string, JSONValue>;
  gpus?: number;
  cache?: boolean;
  retries?: number;
  after?: string[];
  executor?: string;
  position?: IXY;
  [key: string]: unknown;
}

export interface IPipelineSpec {
  format: string;
  version: number;
  name?: string;
  description?: string;
  parameters?: Record<string, JSONValue>;
  stages: Record<string, IStageSpec>;
  [key: string]: unknown;
}

/** A stage name as the schema allows it. */
export const NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_-]*$/;
/** `pipeline` is the namespace of `${pipeline.NAME}`: no stage may take it. */
export const RESERVED_NAMES = new Set(['pipeline']);

const OUTPUT_REF = /^\$\{([A-Za-z_][A-Za-z0-9_-]*)\.outputs\.([^{}]+)\}$/;
const PIPELINE_REF = /^\$\{pipeline\.([^{}.]+)\}$/;

export type Ref =
  | { kind: 'output'; stage: string; output: string }
  | { kind: 'pipeline'; name: string };

/** The reference a parameter value is, if it is exactly one. */
export function parseRef(value: unknown): Ref | null {
  if (typeof value !== 'string' || !value.startsWith('${')) {
    return null;
  }
  const pipe = PIPELINE_REF.exec(value);
  if (pipe) {
    return { kind: 'pipeline', name: pipe[1] };
  }
  const out = OUTPUT_REF.exec(value);
  if (out && out[1] !== 'pipeline') {
    return { kind: 'output', stage: out[1], output: out[2] };
  }
  return null;
}

export function outputRef(stage: string, output: string): string {
  return '${' + stage + '.outputs.' + output + '}';
}

export function pipelineRef(name: string): string {
  return '${pipeline.' + name + '}';
}

/** A new pipeline with no stages. */
export function emptySpec(name: string): IPipelineSpec {
  return {
    format: FORMAT,
    version: FORMAT_VERSION,
    name,
    description: '',
    parameters: {},
    stages: {}
  };
}

export type ParseResult =
  { spec: IPipelineSpec; warning: string | null } | { error: string };

/** Parse the file's text; an empty file is a new pipeline. */
export function parseSpec(text: string, fallbackName: string): ParseResult {
  if (!text.trim()) {
    return { spec: emptySpec(fallbackName), warning: null };
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    return { error: `not valid JSON: ${(error as Error).message}` };
  }
  if (!isObject(data)) {
    return { error: 'a pipeline file holds a JSON object' };
  }
  if (data.format !== FORMAT) {
    return {
      error: `"format" is ${JSON.stringify(data.format ?? null)}, expected "${FORMAT}"`
    };
  }
  if (data.stages !== undefined && !isObject(data.stages)) {
    return { error: '"stages" must be an object of stages keyed by name' };
  }
  const stages = (data.stages ?? {}) as Record<string, unknown>;
  for (const [name, stage] of Object.entries(stages)) {
    if (!isObject(stage) || !isObject(stage.template)) {
      return { error: `stage "${name}" needs a "template" object` };
    }
    if (stage.parameters !== undefined && !isObject(stage.parameters)) {
      return { error: `stage "${name}": "parameters" must be an object` };
    }
    if (stage.after !== undefined && !Array.isArray(stage.after)) {
      return {
        error: `stage "${name}": "after" must be a list of stage names`
      };
    }
  }
  if (data.parameters !== undefined && !isObject(data.parameters)) {
    return { error: '"parameters" must be an object of names and defaults' };
  }
  const spec = { ...data, stages } as IPipelineSpec;
  const version = typeof data.version === 'number' ? data.version : NaN;
  const warning =
    version === FORMAT_VERSION
      ? null
      : `this file says format version ${String(data.version)}; this editor writes version ${FORMAT_VERSION}`;
  return { spec, warning };
}

const TOP_ORDER = [
  'format',
  'version',
  'name',
  'description',
  'parameters',
  'stages'
];
const STAGE_ORDER = [
  'template',
  'parameters',
  'gpus',
  'cache',
  'retries',
  'after',
  'executor',
  'position'
];
const TEMPLATE_ORDER = ['run', 'notebook', 'snapshot'];
const XY_ORDER = ['x', 'y'];

/**
 * The file's text: 2-space JSON with a stable key order (the known keys in the schema's order,
 * then unknown keys as they came; stages and parameters keep their order), ending in a newline.
 */
export function serializeSpec(spec: IPipelineSpec): string {
  const top = ordered(spec, TOP_ORDER);
  if (isObject(spec.stages)) {
    const stages: Record<string, unknown> = {};
    for (const [name, stage] of Object.entries(spec.stages)) {
      const s = ordered(stage, STAGE_ORDER);
      if (isObject(stage.template)) {
        s.template = ordered(stage.template, TEMPLATE_ORDER);
      }
      if (isObject(stage.position)) {
        s.position = ordered(stage.position, XY_ORDER);
      }
      stages[name] = s;
    }
    top.stages = stages;
  }
  return JSON.stringify(top, null, 2) + '\n';
}

function ordered(
  obj: Record<string, unknown>,
  order: string[]
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of order) {
    if (key in obj && obj[key] !== undefined) {
      out[key] = obj[key];
    }
  }
  for (const [key, value] of Object.entries(obj)) {
    if (!(key in out) && value !== undefined) {
      out[key] = value;
    }
  }
  return out;
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// --- the graph ----------------------------------------------------------------------------

/** The stages a stage depends on: through its references and its `after` list. */
export function upstreamOf(stage: IStageSpec): Set<string> {
  const out = new Set<string>();
  for (const value of Object.values(stage.parameters ?? {})) {
    const ref = parseRef(value);
    if (ref?.kind === 'output') {
      out.add(ref.stage);
    }
  }
  for (const name of stage.after ?? []) {
    if (typeof name === 'string') {
      out.add(name);
    }
  }
  return out;
}

/**
 * The path by which `from` already depends on `to` (`[from, ..., to]`), or null: an edge
 * to -> from would then close a cycle.
 */
export function dependencyPath(
  spec: IPipelineSpec,
  from: string,
  to: string
): string[] | null {
  if (from === to) {
    return [from];
  }
  const seen = new Set<string>([from]);
  const prev = new Map<string, string>();
  const queue = [from];
  while (queue.length) {
    const current = queue.shift()!;
    const stage = spec.stages[current];
    if (!stage) {
      continue;
    }
    for (const up of upstreamOf(stage)) {
      if (seen.has(up)) {
        continue;
      }
      seen.add(up);
      prev.set(up, current);
      if (up === to) {
        const path = [to];
        let at = to;
        while (prev.has(at)) {
          at = prev.get(at)!;
          path.unshift(at);
        }
        return path;
      }
      queue.push(up);
    }
  }
  return null;
}

/**
 * Why an edge `source -> target` cannot be added because of a cycle, as the cycle's stages
 * (`target -> ... -> source -> target` read as "runs before"), or null.
 */
export function cycleIfConnected(
  spec: IPipelineSpec,
  source: string,
  target: string
): string[] | null {
  // The edge makes `target` depend on `source`; a cycle exists if `source` depends on `target`.
  const path = dependencyPath(spec, source, target);
  if (!path) {
    return null;
  }
  // path: source depends on ... depends on target; in run order: target -> ... -> source.
  const runOrder = [...path].reverse();
  return [...runOrder, target];
}

/** A valid stage name from free text (a run's name), unique among `taken`. */
export function uniqueStageName(base: string, taken: Iterable<string>): string {
  const used = new Set(taken);
  let name = base.trim().replace(/[^A-Za-z0-9_-]+/g, '_');
  name = name.replace(/^_+(?=[A-Za-z0-9])/, '');
  if (!name) {
    name = 'stage';
  }
  if (!/^[A-Za-z_]/.test(name)) {
    name = 'stage_' + name;
  }
  if (RESERVED_NAMES.has(name)) {
    name = name + '_stage';
  }
  if (!used.has(name)) {
    return name;
  }
  for (let i = 2; ; i++) {
    const candidate = `${name}_${i}`;
    if (!used.has(candidate)) {
      return candidate;
    }
  }
}

/** Why a new stage name is refused, or null. */
export function checkStageName(
  spec: IPipelineSpec,
  current: string | null,
  name: string
): string | null {
  if (!NAME_PATTERN.test(name)) {
    return 'a stage name starts with a letter or _ and has only letters, digits, _ and -';
  }
  if (RESERVED_NAMES.has(name)) {
    return `"${name}" is reserved`;
  }
  if (name !== current && name in spec.stages) {
    return `there is already a stage "${name}"`;
  }
  return null;
}

// --- edits (pure) ---------------------------------------------------------------------------

function withStages(
  spec: IPipelineSpec,
  stages: Record<string, IStageSpec>
): IPipelineSpec {
  return { ...spec, stages };
}

export function addStage(
  spec: IPipelineSpec,
  name: string,
  stage: IStageSpec
): IPipelineSpec {
  return withStages(spec, { ...spec.stages, [name]: stage });
}

export function updateStage(
  spec: IPipelineSpec,
  name: string,
  update: (stage: IStageSpec) => IStageSpec
): IPipelineSpec {
  const stage = spec.stages[name];
  if (!stage) {
    return spec;
  }
  const next = update(stage);
  return next === stage
    ? spec
    : withStages(spec, { ...spec.stages, [name]: next });
}

/** Set (or, with `undefined`, remove) a field of a stage. */
export function setStageField(
  spec: IPipelineSpec,
  name: string,
  field: string,
  value: unknown
): IPipelineSpec {
  return updateStage(spec, name, stage => {
    if (value === undefined) {
      if (!(field in stage)) {
        return stage;
      }
      const next = { ...stage };
      delete next[field];
      return next;
    }
    if (jsonEqual(stage[field], value)) {
      return stage;
    }
    return { ...stage, [field]: value };
  });
}

/** Set (or, with `undefined`, remove: the template's value applies) a stage parameter. */
export function setParam(
  spec: IPipelineSpec,
  name: string,
  param: string,
  value: JSONValue | undefined
): IPipelineSpec {
  return updateStage(spec, name, stage => {
    const params = stage.parameters ?? {};
    if (value === undefined) {
      if (!(param in params)) {
        return stage;
      }
      const next = { ...params };
      delete next[param];
      return { ...stage, parameters: next };
    }
    if (param in params && jsonEqual(params[param], value)) {
      return stage;
    }
    return { ...stage, parameters: { ...params, [param]: value } };
  });
}

export function addAfter(
  spec: IPipelineSpec,
  name: string,
  upstream: string
): IPipelineSpec {
  return updateStage(spec, name, stage => {
    const after = stage.after ?? [];
    return after.includes(upstream)
      ? stage
      : { ...stage, after: [...after, upstream] };
  });
}

export function removeAfter(
  spec: IPipelineSpec,
  name: string,
  upstream: string
): IPipelineSpec {
  return updateStage(spec, name, stage => {
    const after = stage.after ?? [];
    return after.includes(upstream)
      ? { ...stage, after: after.filter(a => a !== upstream) }
      : stage;
  });
}

/**
 * Remove stages; parameters of other stages that referenced them go back to the template's
 * value, and they leave every `after` list.
 */
export function removeStages(
  spec: IPipelineSpec,
  names: Iterable<string>
): IPipelineSpec {
  const gone = new Set(names);
  if (![...gone].some(n => n in spec.stages)) {
    return spec;
  }
  const stages: Record<string, IStageSpec> = {};
  for (const [name, stage] of Object.entries(spec.stages)) {
    if (gone.has(name)) {
      continue;
    }
    stages[name] = mapStageRefs(
      stage,
      ref => (ref.kind === 'output' && gone.has(ref.stage) ? null : undefined),
      after => (gone.has(after) ? null : after)
    );
  }
  return withStages(spec, stages);
}

/** Rename a stage, keeping its place, and rewrite every reference to it. */
export function renameStage(
  spec: IPipelineSpec,
  from: string,
  to: string
): IPipelineSpec {
  if (from === to || !(from in spec.stages)) {
    return spec;
  }
  const stages: Record<string, IStageSpec> = {};
  for (const [name, stage] of Object.entries(spec.stages)) {
    const next = mapStageRefs(
      stage,
      ref =>
        ref.kind === 'output' && ref.stage === from
          ? outputRef(to, ref.output)
          : undefined,
      after => (after === from ? to : after)
    );
    stages[name === from ? to : name] = next;
  }
  return withStages(spec, stages);
}

/** Rename a pipeline parameter and every `${pipeline.NAME}` that uses it. */
export function renamePipelineParam(
  spec: IPipelineSpec,
  from: string,
  to: string
): IPipelineSpec {
  const params = spec.parameters ?? {};
  if (from === to || !(from in params)) {
    return spec;
  }
  const nextParams: Record<string, JSONValue> = {};
  for (const [key, value] of Object.entries(params)) {
    nextParams[key === from ? to : key] = value;
  }
  const stages: Record<string, IStageSpec> = {};
  for (const [name, stage] of Object.entries(spec.stages)) {
    stages[name] = mapStageRefs(stage, ref =>
      ref.kind === 'pipeline' && ref.name === from ? pipelineRef(to) : undefined
    );
  }
  return { ...spec, parameters: nextParams, stages };
}

/**
 * A stage with its references mapped: `mapRef` returns undefined (keep), null (remove the
 * parameter) or a new value; `mapAfter` returns the new name or null (drop it).
 */
function mapStageRefs(
  stage: IStageSpec,
  mapRef: (ref: Ref) => JSONValue | null | undefined,
  mapAfter?: (name: string) => string | null
): IStageSpec {
  let params = stage.parameters;
  let changed = false;
  if (params) {
    const next: Record<string, JSONValue> = {};
    for (const [key, value] of Object.entries(params)) {
      const ref = parseRef(value);
      const mapped = ref ? mapRef(ref) : undefined;
      if (mapped === undefined) {
        next[key] = value;
      } else {
        changed = true;
        if (mapped !== null) {
          next[key] = mapped;
        }
      }
    }
    if (changed) {
      params = next;
    }
  }
  let after = stage.after;
  if (mapAfter && after) {
    const mapped = after
      .map(a => mapAfter(a))
      .filter((a): a is string => a !== null);
    if (
      mapped.length !== after.length ||
      mapped.some((a, i) => a !== after![i])
    ) {
      after = mapped;
      changed = true;
    }
  }
  return changed ? { ...stage, parameters: params, after } : stage;
}

/** Positions written in one edit (a drag, an auto-layout). */
export function setPositions(
  spec: IPipelineSpec,
  positions: Map<string, { x: number; y: number }>
): IPipelineSpec {
  let stages: Record<string, IStageSpec> | null = null;
  for (const [name, pos] of positions) {
    const stage = spec.stages[name];
    if (!stage) {
      continue;
    }
    const x = Math.round(pos.x);
    const y = Math.round(pos.y);
    if (stage.position && stage.position.x === x && stage.position.y === y) {
      continue;
    }
    stages = stages ?? { ...spec.stages };
    stages[name] = { ...stage, position: { ...(stage.position ?? {}), x, y } };
  }
  return stages ? withStages(spec, stages) : spec;
}

export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) {
    return true;
  }
  return JSON.stringify(a) === JSON.stringify(b);
}

// --- literals typed into fields ----------------------------------------------------------------

/**
 * A literal typed into a field, as the value it means for a parameter of `typeName`: text for
 * strings, JSON for everything else (`5`, `0.1`, `true`, `[1, 2]`), or an error message.
 */
export function parseLiteral(
  text: string,
  typeName: string | null | undefined
): { value: JSONValue } | { error: string } {
  if (typeKind(typeName) === 'str') {
    return { value: text };
  }
  let value: JSONValue;
  try {
    value = JSON.parse(text) as JSONValue;
  } catch {
    if (expectedKind(typeName) === null) {
      return { value: text };
    }
    return {
      error: `expects ${expectedKind(typeName)}, got the text ${JSON.stringify(text)}`
    };
  }
  if (!fits(typeName, value)) {
    // the type is named once, as on the Python side: '(it was int64)', never '(it was int)'
    const was = typeKind(typeName) === typeName ? '' : ` (it was ${typeName})`;
    return {
      error: `expects ${expectedKind(typeName)}${was}, got ${describeKind(value)}`
    };
  }
  return { value };
}

/** A value as it is shown in a field (strings bare, other values as JSON). */
export function formatLiteral(
  value: unknown,
  typeName?: string | null
): string {
  if (
    typeof value === 'string' &&
    (typeName === 'str' || typeName === undefined)
  ) {
    return value;
  }
  if (value === undefined) {
    return '';
  }
  return JSON.stringify(value);
}

// --- notebook paths ----------------------------------------------------------------------------

/**
 * A template's notebook as the `.mlpipe` file stores it: relative to the pipeline's folder (the
 * file moves with its notebooks, and the command line resolves it the same way). `notebook` is
 * what the run recorded (an absolute path, or one relative to the Jupyter root); `pipelinePath`
 * is the file relative to the Jupyter root; `serverRoot` the root's absolute path (page config,
 * possibly with `~` for the home folder). A notebook outside the root keeps its absolute path.
 */
export function notebookPathForSpec(
  notebook: string | null,
  pipelinePath: string,
  serverRoot: string
): string | null {
  if (!notebook) {
    return notebook;
  }
  let inRoot: string | null = null;
  if (!notebook.startsWith('/') && !/^[A-Za-z]:[\\/]/.test(notebook)) {
    inRoot = notebook;
  } else {
    const root = serverRoot.replace(/\\/g, '/').replace(/\/+$/, '');
    const path = notebook.replace(/\\/g, '/');
    const tail = root.startsWith('~') ? root.slice(1) : null;
    if (root && path.startsWith(root + '/')) {
      inRoot = path.slice(root.length + 1);
    } else if (tail !== null) {
      // `~/work` in the page config: the notebook's path holds `/work/` after the home folder.
      const at = path.indexOf(tail + '/');
      if (at > 0) {
        inRoot = path.slice(at + tail.length + 1);
      }
    }
  }
  if (inRoot === null) {
    return notebook;
  }
  const from = pipelinePath.split('/').slice(0, -1);
  const to = inRoot.split('/').filter(p => p && p !== '.');
  let common = 0;
  while (
    common < from.length &&
    common < to.length - 1 &&
    from[common] === to[common]
  ) {
    common++;
  }
  return [...from.slice(common).map(() => '..'), ...to.slice(common)].join('/');
}
