import { TranslationBundle } from '@jupyterlab/translation';
import * as React from 'react';

import { IRun, IStageStatus, ITemplateInfo, IValidationIssue } from '../api';
import { IPipelineState, PipelineModel } from './model';
import * as S from './spec';
import { IPipelineSpec, IStageSpec, JSONValue } from './spec';
import { Elapsed, stateLabel } from './StageNode';

/**
 * A text field that commits on Enter or blur (one undo step per change, no spec update per
 * keystroke); `onCommit` returns an error message to keep the text and show why.
 */
export function CommitInput(props: {
  value: string;
  onCommit: (text: string) => string | null | void;
  label: string;
  placeholder?: string;
  type?: 'text' | 'number';
  min?: number;
  className?: string;
  multiline?: boolean;
}): JSX.Element {
  const [text, setText] = React.useState(props.value);
  const [error, setError] = React.useState<string | null>(null);
  React.useEffect(() => {
    setText(props.value);
    setError(null);
  }, [props.value]);
  const commit = () => {
    if (text === props.value) {
      setError(null);
      return;
    }
    const problem = props.onCommit(text);
    setError(problem || null);
  };
  const common = {
    className: `jp-mlp-Field-input ${props.className ?? ''}`,
    'aria-label': props.label,
    'aria-invalid': error ? true : undefined,
    value: text,
    placeholder: props.placeholder,
    onBlur: commit
  };
  return (
    <span className="jp-mlp-Field-control">
      {props.multiline ? (
        <textarea
          {...common}
          rows={2}
          onChange={e => setText(e.target.value)}
          onKeyDown={e => {
            if (e.key === 'Escape') {
              setText(props.value);
              setError(null);
            }
          }}
        />
      ) : (
        <input
          {...common}
          type={props.type ?? 'text'}
          min={props.min}
          onChange={e => setText(e.target.value)}
          onKeyDown={e => {
            if (e.key === 'Enter') {
              commit();
            } else if (e.key === 'Escape') {
              setText(props.value);
              setError(null);
            }
          }}
        />
      )}
      {error ? (
        <span className="jp-mlp-Field-error" role="alert">
          {error}
        </span>
      ) : null}
    </span>
  );
}

function IssueList(props: {
  issues: readonly IValidationIssue[];
  onSelect?: (stage: string) => void;
  trans: TranslationBundle;
}): JSX.Element | null {
  if (!props.issues.length) {
    return null;
  }
  return (
    <ul className="jp-mlp-IssueList" aria-label={props.trans.__('Problems')}>
      {props.issues.map((issue, i) => (
        <li key={i} className="jp-mlp-Issue" data-level={issue.level}>
          {issue.stage && props.onSelect ? (
            <button
              className="jp-mlp-LinkButton"
              onClick={() => props.onSelect!(issue.stage!)}
            >
              {issue.stage}
            </button>
          ) : null}
          {issue.field ? <code>{issue.field}</code> : null}
          <span>{issue.message}</span>
        </li>
      ))}
    </ul>
  );
}

export interface IInspectorProps {
  model: PipelineModel;
  state: IPipelineState;
  trans: TranslationBundle;
}

/** The side panel: the selected stage, or the pipeline itself when nothing is selected. */
export function Inspector(props: IInspectorProps): JSX.Element | null {
  const { model, state, trans } = props;
  const spec = state.spec;
  if (!spec) {
    return null;
  }
  const name = state.selected;
  const stage = name ? spec.stages[name] : undefined;
  if (name && stage) {
    const run = stage.template?.run;
    return (
      <StageInspector
        key={name}
        model={model}
        spec={spec}
        name={name}
        stage={stage}
        template={(run && state.templates.get(run)) || null}
        templates={state.templates}
        templateError={(run && state.templateErrors.get(run)) || null}
        status={state.runView?.detail?.stages?.[name] ?? null}
        issues={state.issues}
        trans={trans}
      />
    );
  }
  return (
    <PipelinePanel
      model={model}
      spec={spec}
      issues={state.issues}
      validation={state.validation}
      trans={trans}
    />
  );
}

const PipelinePanel = React.memo(function PipelinePanel(props: {
  model: PipelineModel;
  spec: IPipelineSpec;
  issues: readonly IValidationIssue[];
  validation: IPipelineState['validation'];
  trans: TranslationBundle;
}): JSX.Element {
  const { model, spec, trans } = props;
  const params = spec.parameters ?? {};
  const [newName, setNewName] = React.useState('');
  const [newError, setNewError] = React.useState<string | null>(null);
  const addParam = () => {
    const name = newName.trim();
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      setNewError(trans.__('A parameter name is a Python identifier.'));
      return;
    }
    if (name in params) {
      setNewError(trans.__('There is already a parameter "%1".', name));
      return;
    }
    model.edit(s => ({
      ...s,
      parameters: { ...(s.parameters ?? {}), [name]: '' }
    }));
    setNewName('');
    setNewError(null);
  };
  return (
    <div className="jp-mlp-Inspector" aria-label={trans.__('Pipeline')}>
      <h3 className="jp-mlp-Inspector-title">{trans.__('Pipeline')}</h3>
      <label className="jp-mlp-Field">
        <span className="jp-mlp-Field-label">{trans.__('Name')}</span>
        <CommitInput
          label={trans.__('Pipeline name')}
          value={spec.name ?? ''}
          onCommit={text => {
            model.edit(s => ({ ...s, name: text }));
          }}
        />
      </label>
      <label className="jp-mlp-Field">
        <span className="jp-mlp-Field-label">{trans.__('Description')}</span>
        <CommitInput
          label={trans.__('Pipeline description')}
          value={spec.description ?? ''}
          multiline
          onCommit={text => {
            model.edit(s => ({ ...s, description: text }));
          }}
        />
      </label>
      <h4 className="jp-mlp-Inspector-section">{trans.__('Parameters')}</h4>
      <p className="jp-mlp-Inspector-hint">
        {trans.__(
          'Stages read them as ${pipeline.NAME}; a run can override them.'
        )}
      </p>
      {Object.entries(params).map(([key, value]) => (
        <div className="jp-mlp-Field jp-mlp-Field-row" key={key}>
          <CommitInput
            label={trans.__('Name of parameter %1', key)}
            value={key}
            className="jp-mlp-Field-name"
            onCommit={text => {
              const name = text.trim();
              if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
                return trans.__('A parameter name is a Python identifier.');
              }
              if (name !== key && name in params) {
                return trans.__('There is already a parameter "%1".', name);
              }
              model.edit(s => S.renamePipelineParam(s, key, name));
              return null;
            }}
          />
          <CommitInput
            label={trans.__('Default of parameter %1', key)}
            value={S.formatLiteral(value, null)}
            onCommit={text => {
              const parsed = S.parseLiteral(text, null);
              if ('error' in parsed) {
                return parsed.error;
              }
              model.edit(s => ({
                ...s,
                parameters: { ...(s.parameters ?? {}), [key]: parsed.value }
              }));
              return null;
            }}
          />
          <button
            className="jp-mlp-IconButton"
            title={trans.__('Remove parameter %1', key)}
            aria-label={trans.__('Remove parameter %1', key)}
            onClick={() =>
              model.edit(s => {
                const next = { ...(s.parameters ?? {}) };
                delete next[key];
                return { ...s, parameters: next };
              })
            }
          >
            ×
          </button>
        </div>
      ))}
      <div className="jp-mlp-Field jp-mlp-Field-row">
        <input
          className="jp-mlp-Field-input"
          aria-label={trans.__('New parameter name')}
          placeholder={trans.__('new parameter')}
          value={newName}
          onChange={e => setNewName(e.target.value)}
          onKeyDown={e => {
            if (e.key === 'Enter') {
              addParam();
            }
          }}
        />
        <button className="jp-mlp-Button" onClick={addParam}>
          {trans.__('Add')}
        </button>
      </div>
      {newError ? (
        <div className="jp-mlp-Field-error" role="alert">
          {newError}
        </div>
      ) : null}
      <h4 className="jp-mlp-Inspector-section">{trans.__('Validation')}</h4>
      {props.validation === 'unavailable' ? (
        <p className="jp-mlp-Inspector-hint">
          {trans.__('The server could not validate this pipeline.')}
        </p>
      ) : props.validation === 'ok' && !props.issues.length ? (
        <p className="jp-mlp-Inspector-hint">
          {trans.__('No problems found.')}
        </p>
      ) : null}
      <IssueList
        issues={props.issues}
        trans={trans}
        onSelect={stage => model.select(stage)}
      />
      <p className="jp-mlp-Inspector-hint">
        {trans.__(
          'Keys: Delete removes the selection, Ctrl+A selects all, F fits the view, Ctrl+Z / Ctrl+Shift+Z undo and redo.'
        )}
      </p>
    </div>
  );
});

interface IStageInspectorProps {
  model: PipelineModel;
  spec: IPipelineSpec;
  name: string;
  stage: IStageSpec;
  template: ITemplateInfo | null;
  templates: ReadonlyMap<string, ITemplateInfo>;
  templateError: string | null;
  status: IStageStatus | null;
  issues: readonly IValidationIssue[];
  trans: TranslationBundle;
}

function StageInspector(props: IStageInspectorProps): JSX.Element {
  const { model, spec, name, stage, template, status, trans } = props;
  const issues = props.issues.filter(i => i.stage === name);
  const params = stage.parameters ?? {};
  const rows: {
    key: string;
    type: string | null;
    def: JSONValue | undefined;
  }[] = [];
  const seen = new Set<string>();
  for (const p of template?.params ?? []) {
    seen.add(p.key);
    rows.push({ key: p.key, type: p.type, def: p.value });
  }
  for (const key of Object.keys(params)) {
    if (!seen.has(key)) {
      rows.push({ key, type: null, def: undefined });
    }
  }
  const fieldIssues = (field: string) =>
    issues.filter(
      i =>
        i.field === field ||
        i.field === `parameters.${field}` ||
        i.field === `params.${field}`
    );
  const stageIssues = issues.filter(
    i => !i.field || !rows.some(r => fieldIssues(r.key).includes(i))
  );
  const setField = (field: string, value: unknown) =>
    model.edit(s => S.setStageField(s, name, field, value));
  const runId = status?.run_id ?? status?.cached_from ?? null;
  return (
    <div className="jp-mlp-Inspector" aria-label={trans.__('Stage %1', name)}>
      <h3 className="jp-mlp-Inspector-title">{trans.__('Stage')}</h3>
      <label className="jp-mlp-Field">
        <span className="jp-mlp-Field-label">{trans.__('Name')}</span>
        <CommitInput
          label={trans.__('Stage name')}
          value={name}
          onCommit={text => model.rename(name, text.trim())}
        />
      </label>
      {status ? (
        <div className="jp-mlp-Inspector-run" data-status={status.status}>
          <span className="jp-mlp-StageNode-state" data-status={status.status}>
            {stateLabel(trans, String(status.status))}
          </span>
          <Elapsed status={status} />
          {typeof status.cells_total === 'number' ? (
            <span>
              {trans.__(
                '%1/%2 cells',
                status.cells_done ?? 0,
                status.cells_total
              )}
            </span>
          ) : null}
          {runId ? (
            <button
              className="jp-mlp-LinkButton"
              onClick={() => model.openRun(runId)}
            >
              {status.cached_from && !status.run_id
                ? trans.__('cached from run %1', runId)
                : trans.__('run %1', runId)}
            </button>
          ) : null}
          {status.error ? (
            <pre className="jp-mlp-Inspector-error">
              {errorString(status.error)}
            </pre>
          ) : null}
        </div>
      ) : null}
      <TemplateSection
        model={model}
        name={name}
        stage={stage}
        template={template}
        templateError={props.templateError}
        trans={trans}
      />
      <h4 className="jp-mlp-Inspector-section">{trans.__('Parameters')}</h4>
      {!rows.length ? (
        <p className="jp-mlp-Inspector-hint">
          {template
            ? trans.__('The template run has no parameters.')
            : trans.__('Loading the template…')}
        </p>
      ) : null}
      {rows.map(row => (
        <ParamField
          key={row.key}
          model={model}
          spec={spec}
          stage={name}
          param={row.key}
          type={row.type}
          def={row.def}
          value={params[row.key]}
          isSet={row.key in params}
          templates={props.templates}
          issues={fieldIssues(row.key)}
          trans={trans}
        />
      ))}
      <h4 className="jp-mlp-Inspector-section">{trans.__('Resources')}</h4>
      <label className="jp-mlp-Field">
        <span className="jp-mlp-Field-label">{trans.__('GPUs')}</span>
        <CommitInput
          label={trans.__('GPUs')}
          type="number"
          min={0}
          value={stage.gpus === undefined ? '' : String(stage.gpus)}
          placeholder={trans.__('as the template')}
          onCommit={text => {
            if (!text.trim()) {
              setField('gpus', undefined);
              return;
            }
            const n = Number(text);
            if (!Number.isInteger(n) || n < 0) {
              return trans.__('GPUs is a whole number, 0 or more.');
            }
            setField('gpus', n);
            return null;
          }}
        />
      </label>
      <label className="jp-mlp-Field jp-mlp-Field-check">
        <input
          type="checkbox"
          checked={stage.cache !== false}
          onChange={e => setField('cache', e.target.checked)}
        />
        <span>
          {trans.__('Use the cache (reuse an earlier identical run)')}
        </span>
      </label>
      <label className="jp-mlp-Field">
        <span className="jp-mlp-Field-label">{trans.__('Retries')}</span>
        <CommitInput
          label={trans.__('Retries')}
          type="number"
          min={0}
          value={String(stage.retries ?? 0)}
          onCommit={text => {
            const n = Number(text || '0');
            if (!Number.isInteger(n) || n < 0) {
              return trans.__('Retries is a whole number, 0 or more.');
            }
            setField('retries', n);
            return null;
          }}
        />
      </label>
      {stage.after && stage.after.length ? (
        <>
          <h4 className="jp-mlp-Inspector-section">{trans.__('Runs after')}</h4>
          <ul className="jp-mlp-AfterList">
            {stage.after.map(up => (
              <li key={up}>
                <span>{up}</span>
                <button
                  className="jp-mlp-IconButton"
                  aria-label={trans.__('Remove the order edge from %1', up)}
                  title={trans.__('Remove the order edge from %1', up)}
                  onClick={() => model.edit(s => S.removeAfter(s, name, up))}
                >
                  ×
                </button>
              </li>
            ))}
          </ul>
        </>
      ) : null}
      <IssueList issues={stageIssues} trans={trans} />
      <div className="jp-mlp-Inspector-actions">
        <button
          className="jp-mlp-Button jp-mod-warn"
          onClick={() => model.remove([name], [])}
        >
          {trans.__('Delete stage')}
        </button>
      </div>
    </div>
  );
}

function errorString(error: unknown): string {
  if (typeof error === 'string') {
    return error;
  }
  if (error && typeof error === 'object') {
    const e = error as Record<string, unknown>;
    if (typeof e.ename === 'string') {
      return `${e.ename}: ${String(e.evalue ?? '')}`;
    }
    if (typeof e.message === 'string') {
      return e.message;
    }
  }
  return JSON.stringify(error);
}

function TemplateSection(props: {
  model: PipelineModel;
  name: string;
  stage: IStageSpec;
  template: ITemplateInfo | null;
  templateError: string | null;
  trans: TranslationBundle;
}): JSX.Element {
  const { model, name, stage, template, trans } = props;
  const notebook = template?.notebook ?? stage.template?.notebook ?? null;
  const [runs, setRuns] = React.useState<IRun[] | null>(null);
  const [error, setError] = React.useState<string | null>(null);
  const loadRuns = async () => {
    if (!notebook) {
      return;
    }
    try {
      setError(null);
      setRuns(await model.runsOfNotebook(notebook));
    } catch (e) {
      setError((e as Error).message);
    }
  };
  return (
    <div className="jp-mlp-Inspector-template">
      <h4 className="jp-mlp-Inspector-section">{trans.__('Template')}</h4>
      <div className="jp-mlp-Inspector-kv">
        <span>{trans.__('Run')}</span>
        <span>
          <button
            className="jp-mlp-LinkButton"
            onClick={() => model.openRun(stage.template.run)}
            title={trans.__('Open run %1', stage.template.run)}
          >
            {stage.template.run}
          </button>
          {template ? ` · ${template.name}` : ''}
        </span>
        <span>{trans.__('Notebook')}</span>
        <span className="jp-mlp-Inspector-path">{notebook ?? '—'}</span>
      </div>
      {props.templateError ? (
        <div className="jp-mlp-Field-error">{props.templateError}</div>
      ) : null}
      {notebook ? (
        runs === null ? (
          <button className="jp-mlp-Button" onClick={() => void loadRuns()}>
            {trans.__('Replace with another run of this notebook…')}
          </button>
        ) : (
          <label className="jp-mlp-Field">
            <span className="jp-mlp-Field-label">{trans.__('Use run')}</span>
            <select
              className="jp-mlp-Field-input"
              aria-label={trans.__('Template run')}
              value={stage.template.run}
              onChange={e => void model.replaceTemplate(name, e.target.value)}
            >
              {runs.some(r => r.id === stage.template.run) ? null : (
                <option value={stage.template.run}>{stage.template.run}</option>
              )}
              {runs.map(r => (
                <option key={r.id} value={r.id}>
                  {`${r.id} · ${r.name} · ${r.status}${
                    r.created_at
                      ? ' · ' + new Date(r.created_at * 1000).toLocaleString()
                      : ''
                  }${r.id === stage.template.run ? ' ✓' : ''}`}
                </option>
              ))}
            </select>
          </label>
        )
      ) : null}
      {error ? <div className="jp-mlp-Field-error">{error}</div> : null}
    </div>
  );
}

const DEFAULT = '\u0000default';
const LITERAL = '\u0000literal';

function ParamField(props: {
  model: PipelineModel;
  spec: IPipelineSpec;
  stage: string;
  param: string;
  type: string | null;
  def: JSONValue | undefined;
  value: JSONValue | undefined;
  isSet: boolean;
  templates: ReadonlyMap<string, ITemplateInfo>;
  issues: IValidationIssue[];
  trans: TranslationBundle;
}): JSX.Element {
  const { model, spec, stage, param, type, trans } = props;
  const ref = S.parseRef(props.value);
  const [literalMode, setLiteralMode] = React.useState(false);
  const [problem, setProblem] = React.useState<string | null>(null);
  const mode = ref
    ? (props.value as string)
    : props.isSet || literalMode
      ? LITERAL
      : DEFAULT;
  const outputs: { stage: string; output: string }[] = [];
  for (const [other, s] of Object.entries(spec.stages)) {
    if (other === stage) {
      continue;
    }
    const t = props.templates.get(s.template?.run);
    const names = new Set((t?.outputs ?? []).map(o => o.name));
    if (ref?.kind === 'output' && ref.stage === other) {
      names.add(ref.output);
    }
    for (const output of names) {
      outputs.push({ stage: other, output });
    }
  }
  const pipelineParams = Object.keys(spec.parameters ?? {});
  const onSource = (value: string) => {
    setProblem(null);
    if (value === DEFAULT) {
      setLiteralMode(false);
      model.edit(s => S.setParam(s, stage, param, undefined));
    } else if (value === LITERAL) {
      setLiteralMode(true);
      if (ref) {
        model.edit(s =>
          S.setParam(
            s,
            stage,
            param,
            props.def === undefined ? null : props.def
          )
        );
      }
    } else {
      const chosen = S.parseRef(value);
      if (chosen?.kind === 'output') {
        model.connect(
          chosen.stage,
          'out:' + chosen.output,
          stage,
          'in:' + param
        );
      } else if (chosen?.kind === 'pipeline') {
        const def = spec.parameters?.[chosen.name];
        if (def !== undefined && def !== '' && !S.fits(type, def)) {
          setProblem(
            trans.__(
              '%1 expects %2, but pipeline.%3 defaults to %4',
              param,
              S.expectedKind(type) ?? '',
              chosen.name,
              S.describeKind(def)
            )
          );
          return;
        }
        model.edit(s => S.setParam(s, stage, param, value));
      }
    }
  };
  return (
    <div
      className="jp-mlp-Field jp-mlp-ParamField"
      data-param={param}
      data-issue={props.issues[0]?.level}
    >
      <span className="jp-mlp-Field-label">
        {param}
        {type ? <span className="jp-mlp-Field-type">{type}</span> : null}
      </span>
      <select
        className="jp-mlp-Field-input"
        aria-label={trans.__('Source of %1', param)}
        value={mode}
        onChange={e => onSource(e.target.value)}
      >
        <option value={DEFAULT}>
          {props.def === undefined
            ? trans.__('(not set)')
            : trans.__('template: %1', S.formatLiteral(props.def, type))}
        </option>
        <option value={LITERAL}>{trans.__('value…')}</option>
        {pipelineParams.length ? (
          <optgroup label={trans.__('pipeline parameters')}>
            {pipelineParams.map(p => (
              <option key={p} value={S.pipelineRef(p)}>
                {`pipeline.${p}`}
              </option>
            ))}
          </optgroup>
        ) : null}
        {outputs.length ? (
          <optgroup label={trans.__('stage outputs')}>
            {outputs.map(o => (
              <option
                key={o.stage + '.' + o.output}
                value={S.outputRef(o.stage, o.output)}
              >
                {`${o.stage}.${o.output}`}
              </option>
            ))}
          </optgroup>
        ) : null}
        {ref &&
        !outputs.some(o => S.outputRef(o.stage, o.output) === props.value) &&
        !(ref.kind === 'pipeline' && pipelineParams.includes(ref.name)) ? (
          <option value={props.value as string}>{props.value as string}</option>
        ) : null}
      </select>
      {mode === LITERAL ? (
        <CommitInput
          label={trans.__('Value of %1', param)}
          value={props.isSet ? S.formatLiteral(props.value, type) : ''}
          placeholder={
            props.def === undefined ? '' : S.formatLiteral(props.def, type)
          }
          onCommit={text => {
            const parsed = S.parseLiteral(text, type);
            if ('error' in parsed) {
              return trans.__('%1 %2', param, parsed.error);
            }
            model.edit(s => S.setParam(s, stage, param, parsed.value));
            return null;
          }}
        />
      ) : null}
      {problem ? (
        <span className="jp-mlp-Field-error" role="alert">
          {problem}
        </span>
      ) : null}
      {props.issues.map((issue, i) => (
        <span key={i} className="jp-mlp-Field-issue" data-level={issue.level}>
          {issue.message}
        </span>
      ))}
    </div>
  );
}
