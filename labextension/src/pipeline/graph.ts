/**
 * Spec -> React Flow graph. Nodes and edges are cached per stage: a node object is rebuilt
 * only when something it shows changed (its stage, its template, its run state, its issues, the
 * outputs others read from it), so an edit re-renders the nodes it touched, not all of them.
 */
import type { Edge, Node } from '@xyflow/react';

import { IStageStatus, ITemplateInfo, IValidationIssue } from '../api';
import {
  AFTER_IN,
  AFTER_OUT,
  afterEdgeId,
  inHandle,
  outHandle,
  refEdgeId
} from './model';
import { formatLiteral, IPipelineSpec, IStageSpec, parseRef } from './spec';

export interface IPortView {
  name: string;
  /** Python type of a parameter / kind of an output ("artifact", "int" ...). */
  type: string | null;
  /** What the node shows next to the port. */
  display: string;
  /** The value is a reference (`${...}`), the template's default, or set in the spec. */
  source: 'ref' | 'default' | 'set' | 'none';
  /** A parameter the template does not have / an output the template run never produced. */
  unknown: boolean;
  /** The message of a validation issue about this port. */
  issue: string | null;
  issueLevel: string | null;
}

export type StageNodeData = {
  name: string;
  notebook: string | null;
  templateRun: string;
  templateName: string | null;
  templateError: string | null;
  inputs: IPortView[];
  outputs: IPortView[];
  status: IStageStatus | null;
  issues: readonly IValidationIssue[];
  cache: boolean;
  gpus: number | null;
};

export type StageNode = Node<StageNodeData, 'stage'>;

const EMPTY_ISSUES: readonly IValidationIssue[] = [];
export const NODE_WIDTH = 240;

interface ICacheEntry {
  stage: IStageSpec;
  template: ITemplateInfo | undefined;
  templateError: string | undefined;
  status: IStageStatus | null;
  issues: readonly IValidationIssue[];
  readKey: string;
  index: number;
  node: StageNode;
}

export interface IGraphInput {
  spec: IPipelineSpec;
  templates: ReadonlyMap<string, ITemplateInfo>;
  templateErrors: ReadonlyMap<string, string>;
  stageStatus: Record<string, IStageStatus> | null;
  issues: readonly IValidationIssue[];
}

export class GraphBuilder {
  /** The nodes and edges for a spec; unchanged stages give the same objects as last time. */
  build(input: IGraphInput): { nodes: StageNode[]; edges: Edge[] } {
    const { spec, templates, templateErrors, stageStatus } = input;
    const issuesByStage = this._issuesByStage(input.issues);
    this._nextEdges = new Map();
    // Outputs each stage is read from (they get ports even if the template never produced them).
    const read = new Map<string, Set<string>>();
    const edges: Edge[] = [];
    const names = Object.keys(spec.stages);
    for (const [target, stage] of Object.entries(spec.stages)) {
      for (const [param, value] of Object.entries(stage.parameters ?? {})) {
        const ref = parseRef(value);
        if (ref?.kind !== 'output' || !spec.stages[ref.stage]) {
          continue;
        }
        let outs = read.get(ref.stage);
        if (!outs) {
          outs = new Set();
          read.set(ref.stage, outs);
        }
        outs.add(ref.output);
        edges.push(
          this._edge(
            refEdgeId(ref.stage, ref.output, target, param),
            ref.stage,
            outHandle(ref.output),
            target,
            inHandle(param),
            false,
            stageStatus?.[ref.stage]?.status === 'running'
          )
        );
      }
      for (const source of stage.after ?? []) {
        if (spec.stages[source]) {
          edges.push(
            this._edge(
              afterEdgeId(source, target),
              source,
              AFTER_OUT,
              target,
              AFTER_IN,
              true,
              false
            )
          );
        }
      }
    }
    const nodes: StageNode[] = [];
    const next = new Map<string, ICacheEntry>();
    names.forEach((name, index) => {
      const stage = spec.stages[name];
      const run = stage.template?.run;
      const template = run ? templates.get(run) : undefined;
      const templateError = run ? templateErrors.get(run) : undefined;
      const status = stageStatus?.[name] ?? null;
      const issues = issuesByStage.get(name) ?? EMPTY_ISSUES;
      const readKey = [...(read.get(name) ?? [])].sort().join('\u0000');
      const old = this._cache.get(name);
      if (
        old &&
        old.stage === stage &&
        old.template === template &&
        old.templateError === templateError &&
        old.status === status &&
        old.issues === issues &&
        old.readKey === readKey &&
        (stage.position || old.index === index)
      ) {
        next.set(name, old);
        nodes.push(old.node);
        return;
      }
      const node: StageNode = {
        id: name,
        type: 'stage',
        position: stage.position
          ? { x: stage.position.x, y: stage.position.y }
          : {
              x: (index % 5) * (NODE_WIDTH + 80),
              y: Math.floor(index / 5) * 220
            },
        data: stageData(
          name,
          stage,
          template,
          templateError,
          status,
          issues,
          read.get(name)
        )
      };
      next.set(name, {
        stage,
        template,
        templateError,
        status,
        issues,
        readKey,
        index,
        node
      });
      nodes.push(node);
    });
    this._cache = next;
    this._edges = this._nextEdges;
    return { nodes, edges };
  }

  private _issuesByStage(
    issues: readonly IValidationIssue[]
  ): Map<string, readonly IValidationIssue[]> {
    if (issues === this._lastIssues) {
      return this._lastIssuesByStage;
    }
    const byStage = new Map<string, IValidationIssue[]>();
    for (const issue of issues) {
      if (issue.stage) {
        const list = byStage.get(issue.stage) ?? [];
        list.push(issue);
        byStage.set(issue.stage, list);
      }
    }
    // Keep the previous array for stages whose issues did not change (no node rebuild).
    const stable = new Map<string, readonly IValidationIssue[]>();
    for (const [stage, list] of byStage) {
      const old = this._lastIssuesByStage.get(stage);
      stable.set(
        stage,
        old && JSON.stringify(old) === JSON.stringify(list) ? old : list
      );
    }
    this._lastIssues = issues;
    this._lastIssuesByStage = stable;
    return stable;
  }

  private _edge(
    id: string,
    source: string,
    sourceHandle: string,
    target: string,
    targetHandle: string,
    order: boolean,
    animated: boolean
  ): Edge {
    const old = this._edges.get(id);
    if (old && !!old.animated === animated) {
      this._nextEdges.set(id, old);
      return old;
    }
    const edge: Edge = {
      id,
      source,
      sourceHandle,
      target,
      targetHandle,
      animated,
      className: order ? 'jp-mlp-Edge-after' : 'jp-mlp-Edge-ref'
    };
    this._nextEdges.set(id, edge);
    return edge;
  }

  private _cache = new Map<string, ICacheEntry>();
  private _edges = new Map<string, Edge>();
  private _nextEdges = new Map<string, Edge>();
  private _lastIssues: readonly IValidationIssue[] | null = null;
  private _lastIssuesByStage = new Map<string, readonly IValidationIssue[]>();
}

function fieldParam(field: string | null): string | null {
  if (!field) {
    return null;
  }
  const m = /^(?:parameters|params)[.[]"?([^"\]]+)"?\]?$/.exec(field);
  return m ? m[1] : null;
}

function fieldOutput(field: string | null): string | null {
  if (!field) {
    return null;
  }
  const m = /^outputs[.[]"?([^"\]]+)"?\]?$/.exec(field);
  return m ? m[1] : null;
}

function stageData(
  name: string,
  stage: IStageSpec,
  template: ITemplateInfo | undefined,
  templateError: string | undefined,
  status: IStageStatus | null,
  issues: readonly IValidationIssue[],
  read: Set<string> | undefined
): StageNodeData {
  const params = stage.parameters ?? {};
  const paramIssue = new Map<string, IValidationIssue>();
  const outputIssue = new Map<string, IValidationIssue>();
  for (const issue of issues) {
    const p = fieldParam(issue.field);
    if (p && (!paramIssue.has(p) || issue.level === 'error')) {
      paramIssue.set(p, issue);
    }
    const o = fieldOutput(issue.field);
    if (o) {
      outputIssue.set(o, issue);
    }
  }
  const inputs: IPortView[] = [];
  const seen = new Set<string>();
  const addInput = (
    key: string,
    type: string | null,
    unknown: boolean,
    def: unknown
  ) => {
    seen.add(key);
    const issue = paramIssue.get(key) ?? null;
    let display: string;
    let source: IPortView['source'];
    if (key in params) {
      const value = params[key];
      const ref = parseRef(value);
      if (ref) {
        source = 'ref';
        display =
          ref.kind === 'output'
            ? `${ref.stage}.${ref.output}`
            : `pipeline.${ref.name}`;
      } else {
        source = 'set';
        display = formatLiteral(value);
      }
    } else if (def !== undefined) {
      source = 'default';
      display = formatLiteral(def);
    } else {
      source = 'none';
      display = '';
    }
    inputs.push({
      name: key,
      type,
      display: display.length > 40 ? display.slice(0, 39) + '…' : display,
      source,
      unknown,
      issue: issue?.message ?? null,
      issueLevel: issue?.level ?? null
    });
  };
  for (const p of template?.params ?? []) {
    addInput(p.key, p.type, false, p.value);
  }
  for (const key of Object.keys(params)) {
    if (!seen.has(key)) {
      addInput(key, null, !!template, undefined);
    }
  }
  const outputs: IPortView[] = [];
  const outSeen = new Set<string>();
  for (const o of template?.outputs ?? []) {
    outSeen.add(o.name);
    const issue = outputIssue.get(o.name) ?? null;
    outputs.push({
      name: o.name,
      type: o.kind === 'artifact' ? 'artifact' : valueType(o.value),
      display: o.kind === 'artifact' ? 'file' : '',
      source: 'none',
      unknown: false,
      issue: issue?.message ?? null,
      issueLevel: issue?.level ?? null
    });
  }
  for (const o of read ?? []) {
    if (!outSeen.has(o)) {
      const issue = outputIssue.get(o) ?? null;
      outputs.push({
        name: o,
        type: null,
        display: '',
        source: 'none',
        unknown: !!template,
        issue: issue?.message ?? null,
        issueLevel: issue?.level ?? null
      });
    }
  }
  return {
    name,
    notebook: template?.notebook ?? stage.template?.notebook ?? null,
    templateRun: stage.template?.run ?? '',
    templateName: template?.name ?? null,
    templateError: templateError ?? null,
    inputs,
    outputs,
    status,
    issues,
    cache: stage.cache !== false,
    gpus: typeof stage.gpus === 'number' ? stage.gpus : null
  };
}

function valueType(value: unknown): string | null {
  if (value === null || value === undefined) {
    return null;
  }
  if (typeof value === 'number') {
    return Number.isInteger(value) ? 'int' : 'float';
  }
  if (typeof value === 'string') {
    return 'str';
  }
  if (typeof value === 'boolean') {
    return 'bool';
  }
  return Array.isArray(value) ? 'list' : 'dict';
}
