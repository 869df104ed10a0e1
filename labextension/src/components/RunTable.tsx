/**
 * The runs table, virtualized: rows have a fixed height and only those in view (plus a few
 * either side) are in the DOM, so 10,000 loaded runs scroll like 30. Scrolling near the end asks
 * the model for the next page. Column headers sort (again: the other direction).
 */
import { TranslationBundle } from '@jupyterlab/translation';
import * as React from 'react';

import { IRun } from '../api';
import {
  OPTIONAL_COLUMNS,
  OptionalColumn,
  RunsModel
} from '../model/RunsModel';
import { formatSort, parseSort } from '../model/sort';
import {
  formatAgo,
  formatBytes,
  formatDuration,
  formatMetric,
  gpuPeak,
  idleSeconds,
  runDuration
} from './format';
import { useNow, useSize } from './hooks';

/** Row height in px (keep in sync with `.jp-mlp-RunTable-row` in style/index.css). */
export const ROW_HEIGHT = 26;
/** Rows rendered above and below the visible ones. */
const OVERSCAN = 8;
/** Ask for the next page when this few loaded rows are left below the view. */
const PREFETCH_ROWS = 60;

import { RUN_MIME } from '../mime';

export { RUN_MIME };

interface IColumn {
  id: string;
  /** Columns with a higher number are left out first when the panel is narrow. */
  drop?: number;
  /** The width it takes at least, in px (for deciding what fits). */
  min: number;
  label: string;
  /** Sort field, if the column sorts. */
  sort?: string;
  width: string;
  className: string;
  /** Numbers align right. */
  numeric?: boolean;
  title?: string;
}

export interface IRunTableProps {
  model: RunsModel;
  trans: TranslationBundle;
  onOpen: (id: string) => void;
}

/**
 * The columns that fit `width` px: the least useful go first in a narrow sidebar (name, status,
 * cells and two metrics always stay; the table scrolls sideways if even they do not fit).
 */
function columns(
  model: RunsModel,
  trans: TranslationBundle,
  width: number
): IColumn[] {
  const all = allColumns(model, trans);
  const shown = [...all];
  const total = () => shown.reduce((sum, c) => sum + c.min, 0);
  const droppable = all
    .filter(c => c.drop !== undefined)
    .sort((a, b) => b.drop! - a.drop!);
  for (const col of droppable) {
    if (width <= 0 || total() <= width) {
      break;
    }
    shown.splice(shown.indexOf(col), 1);
  }
  return shown;
}

function allColumns(model: RunsModel, trans: TranslationBundle): IColumn[] {
  const sorted = parseSort(model.sort).field;
  const optional = new Set<string>(OPTIONAL_COLUMNS);
  return [
    {
      id: 'select',
      label: '',
      min: 22,
      width: '22px',
      className: 'jp-mlp-RunTable-select'
    },
    {
      id: 'pin',
      label: '',
      min: 20,
      width: '20px',
      className: 'jp-mlp-RunTable-pin'
    },
    {
      id: 'name',
      min: 120,
      label: trans.__('Name'),
      sort: 'name',
      width: 'minmax(120px, 1fr)',
      className: 'jp-mlp-RunTable-name'
    },
    ...(model.isColumnShown('owner')
      ? [
          {
            id: 'owner',
            // Never dropped: in a team's store whose run it is matters as much as its name.
            min: 64,
            label: trans.__('Owner'),
            sort: 'owner',
            width: 'minmax(64px, 0.45fr)',
            className: 'jp-mlp-RunTable-owner',
            title: trans.__('Who made the run')
          }
        ]
      : []),
    {
      id: 'status',
      min: 78,
      label: trans.__('Status'),
      sort: 'status',
      width: '78px', // `finished` and its state's dot, whole
      className: 'jp-mlp-RunTable-status'
    },
    ...(model.isColumnShown('kind')
      ? [
          {
            id: 'kind',
            min: 46,
            drop: 7,
            label: trans.__('Kind'),
            width: '46px',
            className: 'jp-mlp-RunTable-kind',
            title: trans.__('interactive (a notebook), job (a rerun) or stage')
          }
        ]
      : []),
    ...(model.isColumnShown('stage')
      ? [
          {
            id: 'stage',
            min: 60,
            drop: 8,
            label: trans.__('Stage'),
            width: 'minmax(60px, 0.5fr)',
            className: 'jp-mlp-RunTable-stage',
            title: trans.__('The pipeline stage the run was')
          }
        ]
      : []),
    ...(model.isColumnShown('parent')
      ? [
          {
            id: 'parent',
            min: 70,
            drop: 9,
            label: trans.__('Parent'),
            width: 'minmax(70px, 0.5fr)',
            className: 'jp-mlp-RunTable-parent',
            title: trans.__('The run this one reran')
          }
        ]
      : []),
    {
      id: 'cells',
      min: 40,
      // never dropped: the cell count is what shows a tracked notebook is alive
      label: trans.__('Cells'),
      width: '40px',
      className: 'jp-mlp-RunTable-cells',
      numeric: true,
      title: trans.__('Cells executed')
    },
    {
      id: 'duration',
      min: 58,
      drop: sorted === 'duration' ? undefined : 4,
      label: trans.__('Time'),
      sort: 'duration',
      width: '58px',
      className: 'jp-mlp-RunTable-duration',
      numeric: true,
      title: trans.__('Duration')
    },
    {
      id: 'created',
      min: 40,
      // Newest first is the default order: the age goes first even then.
      drop: 5,
      label: trans.__('Age'),
      sort: 'created_at',
      width: '40px',
      className: 'jp-mlp-RunTable-created',
      numeric: true,
      title: trans.__('Created')
    },
    ...(model.hasGpuFigures
      ? [
          {
            id: 'gpu',
            min: 56,
            drop: 6,
            label: trans.__('GPU'),
            width: '56px',
            className: 'jp-mlp-RunTable-gpu',
            numeric: true,
            title: trans.__('Peak GPU memory')
          }
        ]
      : []),
    ...model.metricColumns.map((key, i) => ({
      id: `metric:${key}`,
      min: 60,
      // Past the first two metrics, later ones go first; the sorted metric always stays.
      drop: `metrics.${key}` === sorted || i < 2 ? undefined : 10 + i,
      label: key,
      sort: `metrics.${key}`,
      width: '60px',
      className: 'jp-mlp-RunTable-metric',
      numeric: true,
      title: trans.__('Latest %1', key)
    }))
  ].filter(
    c =>
      !optional.has(c.id) ||
      model.isColumnShown(c.id as OptionalColumn) ||
      (c.sort !== undefined && c.sort === sorted)
  );
}

export function RunTable({
  model,
  trans,
  onOpen
}: IRunTableProps): JSX.Element {
  const [scrollRef, size] = useSize<HTMLDivElement>();
  const [scrollTop, setScrollTop] = React.useState(0);
  const frame = React.useRef(0);
  const rows = model.rows;
  // Stable while scrolling, so that rows already on screen skip re-rendering (RunRow is memo).
  const columnKey = `${model.metricColumns.join('\n')}\n${model.sort}\n${size.width}\n${model.hasGpuFigures}\n${OPTIONAL_COLUMNS.map(c => model.isColumnShown(c)).join()}`;
  const cols = React.useMemo(
    () => columns(model, trans, size.width),
    [columnKey]
  );
  const template = React.useMemo(
    () => cols.map(c => c.width).join(' '),
    [cols]
  );
  const sort = parseSort(model.sort);

  const onScroll = React.useCallback(() => {
    if (frame.current) {
      return;
    }
    frame.current = requestAnimationFrame(() => {
      frame.current = 0;
      setScrollTop(scrollRef.current?.scrollTop ?? 0);
    });
  }, []);
  React.useEffect(() => () => cancelAnimationFrame(frame.current), []);

  // Back to the top when the rows are for another query.
  const query = `${model.appliedFilter}\n${model.sort}\n${model.project}`;
  React.useEffect(() => {
    if (scrollRef.current) {
      scrollRef.current.scrollTop = 0;
    }
    setScrollTop(0);
  }, [query]);

  const viewHeight = size.height || 600;
  const first = Math.max(0, Math.floor(scrollTop / ROW_HEIGHT) - OVERSCAN);
  const last = Math.min(
    rows.length,
    Math.ceil((scrollTop + viewHeight) / ROW_HEIGHT) + OVERSCAN
  );

  React.useEffect(() => {
    if (model.hasMore && last >= rows.length - PREFETCH_ROWS) {
      model.loadMore();
    }
  }, [last, rows.length, model.hasMore]);

  const onSort = (field: string) => {
    const desc =
      sort.field === field
        ? !sort.desc
        : !['name', 'status', 'owner'].includes(field);
    model.setSort(formatSort({ field, desc }));
  };

  // Ages and running durations count on screen: every second while a shown run is running,
  // every 30 s otherwise (an age in minutes).
  let anyRunning = false;
  for (let i = first; i < last && !anyRunning; i++) {
    anyRunning = rows[i].status === 'running';
  }
  const now = useNow(anyRunning ? 1000 : 30000);
  const visible: JSX.Element[] = [];
  for (let i = first; i < last; i++) {
    const run = rows[i];
    visible.push(
      <RunRow
        key={run.id}
        run={run}
        index={i}
        cols={cols}
        template={template}
        selected={model.selection.has(run.id)}
        mayChange={model.identity?.mayChange(run.owner) ?? true}
        mine={model.identity?.isMine(run.owner) ?? false}
        cells={model.cellCount(run)}
        now={now}
        model={model}
        trans={trans}
        onOpen={onOpen}
      />
    );
  }

  return (
    <div
      ref={scrollRef}
      className="jp-mlp-RunTable"
      role="table"
      aria-label={trans.__('Runs')}
      aria-rowcount={rows.length + 1}
      data-filter={model.appliedFilter}
      data-sort={model.sort}
      data-rows={rows.length}
      onScroll={onScroll}
    >
      <div
        className="jp-mlp-RunTable-header"
        role="row"
        aria-rowindex={1}
        style={{ gridTemplateColumns: template }}
      >
        {cols.map(col => {
          const active = col.sort !== undefined && sort.field === col.sort;
          return (
            <div
              key={col.id}
              role="columnheader"
              className={`jp-mlp-RunTable-th ${col.className}${col.numeric ? ' jp-mod-numeric' : ''}`}
              aria-sort={
                active ? (sort.desc ? 'descending' : 'ascending') : undefined
              }
              title={col.title ?? col.label}
            >
              {col.sort ? (
                <button
                  className="jp-mlp-RunTable-sort"
                  onClick={() => onSort(col.sort!)}
                >
                  <span className="jp-mlp-RunTable-label">{col.label}</span>
                  {active && (
                    <span className="jp-mlp-RunTable-arrow" aria-hidden="true">
                      {sort.desc ? '▼' : '▲'}
                    </span>
                  )}
                </button>
              ) : (
                <span className="jp-mlp-RunTable-label">{col.label}</span>
              )}
            </div>
          );
        })}
      </div>
      <div
        className="jp-mlp-RunTable-body"
        role="rowgroup"
        style={{ height: rows.length * ROW_HEIGHT }}
      >
        {visible}
      </div>
    </div>
  );
}

interface IRunRowProps {
  run: IRun;
  index: number;
  cols: IColumn[];
  template: string;
  selected: boolean;
  /** Whether this user may change the run (its owner, or an admin): else no pin button. */
  mayChange: boolean;
  /** Whether the run is this user's. */
  mine: boolean;
  cells: number | null;
  /** The clock (seconds): rows re-render as it ticks. */
  now: number;
  model: RunsModel;
  trans: TranslationBundle;
  onOpen: (id: string) => void;
}

const RunRow = React.memo(function RunRow(props: IRunRowProps): JSX.Element {
  const { run, model, trans, onOpen } = props;
  const now = props.now;
  const cell = (col: IColumn): React.ReactNode => {
    switch (col.id) {
      case 'select':
        return (
          <input
            type="checkbox"
            checked={props.selected}
            aria-label={trans.__('Select %1', run.name || run.id)}
            onClick={e => e.stopPropagation()}
            onChange={e =>
              model.toggleSelected(run.id, e.currentTarget.checked)
            }
          />
        );
      case 'pin':
        if (!props.mayChange) {
          // Someone else's run: its pin shows, but only its owner (or an admin) changes it.
          return run.pinned ? (
            <span
              className="jp-mlp-PinMark"
              title={trans.__('Pinned by its owner %1', run.owner ?? '')}
              aria-label={trans.__('Pinned')}
            >
              ★
            </span>
          ) : null;
        }
        return (
          <button
            className="jp-mlp-PinButton"
            aria-pressed={!!run.pinned}
            title={run.pinned ? trans.__('Unpin') : trans.__('Pin to the top')}
            aria-label={run.pinned ? trans.__('Unpin') : trans.__('Pin')}
            onClick={e => {
              e.stopPropagation();
              void model.setPinned(run.id, !run.pinned);
            }}
          >
            {run.pinned ? '★' : '☆'}
          </button>
        );
      case 'name':
        return (
          <span
            className="jp-mlp-RunTable-text"
            title={[
              `${run.name} (${run.id})`,
              run.kind ? trans.__('kind: %1', run.kind) : '',
              run.stage ? trans.__('stage: %1', run.stage) : '',
              run.notebook ? trans.__('notebook: %1', run.notebook) : ''
            ]
              .filter(Boolean)
              .join('\n')}
          >
            {run.name || run.id}
          </span>
        );
      case 'status': {
        const idle = idleSeconds(run, now);
        return idle === null ? (
          <span className="jp-mlp-Status" data-status={run.status}>
            {run.status}
          </span>
        ) : (
          <span
            className="jp-mlp-Status"
            data-status="idle"
            title={trans.__(
              'Kernel alive, idle for %1 (running: the run ends with %mlp_track stop or when the kernel stops)',
              formatDuration(idle)
            )}
          >
            {trans.__('idle')}
          </span>
        );
      }
      case 'owner':
        return (
          <span
            className="jp-mlp-RunTable-text jp-mlp-Owner"
            data-mine={props.mine ? 'true' : undefined}
            title={
              run.owner
                ? props.mine
                  ? trans.__('Owner: %1 (you)', run.owner)
                  : trans.__('Owner: %1', run.owner)
                : trans.__('No owner recorded')
            }
          >
            {run.owner ?? ''}
          </span>
        );
      case 'kind':
        return (
          <span className="jp-mlp-RunTable-text" title={run.kind ?? ''}>
            {run.kind === 'interactive' ? trans.__('nb') : (run.kind ?? '')}
          </span>
        );
      case 'stage':
        return (
          <span
            className="jp-mlp-RunTable-text"
            title={
              run.stage
                ? trans.__(
                    'Stage %1 of pipeline run %2',
                    run.stage,
                    run.pipeline_run_id ?? ''
                  )
                : ''
            }
          >
            {run.stage ?? ''}
          </span>
        );
      case 'parent': {
        const parent = run.parent_id ? model.getRun(run.parent_id) : undefined;
        return (
          <span className="jp-mlp-RunTable-text" title={run.parent_id ?? ''}>
            {run.parent_id
              ? parent
                ? parent.name
                : run.parent_id.slice(0, 8)
              : ''}
          </span>
        );
      }
      case 'cells':
        return props.cells ?? '';
      case 'duration':
        return formatDuration(runDuration(run, now));
      case 'created':
        return formatAgo(run.created_at ?? run.started_at, now);
      case 'gpu':
        return formatBytes(gpuPeak(run));
      default: {
        const key = col.id.slice('metric:'.length);
        return formatMetric(run.metrics?.[key]);
      }
    }
  };
  return (
    <div
      className={`jp-mlp-RunTable-row${props.selected ? ' jp-mod-selected' : ''}${run.pinned ? ' jp-mod-pinned' : ''}`}
      role="row"
      aria-rowindex={props.index + 2}
      aria-selected={props.selected}
      data-run-id={run.id}
      data-owner={run.owner ?? undefined}
      tabIndex={0}
      draggable
      style={{
        transform: `translateY(${props.index * ROW_HEIGHT}px)`,
        gridTemplateColumns: props.template
      }}
      onClick={() => onOpen(run.id)}
      onKeyDown={e => {
        if (e.key === 'Enter') {
          onOpen(run.id);
        } else if (e.key === ' ') {
          e.preventDefault();
          model.toggleSelected(run.id);
        }
      }}
      onDragStart={e => {
        e.dataTransfer.setData(
          RUN_MIME,
          JSON.stringify({ id: run.id, name: run.name })
        );
        e.dataTransfer.setData('text/plain', run.id);
        e.dataTransfer.effectAllowed = 'copy';
      }}
    >
      {props.cols.map(col => (
        <div
          key={col.id}
          role="cell"
          className={`jp-mlp-RunTable-td ${col.className}${col.numeric ? ' jp-mod-numeric' : ''}`}
        >
          {cell(col)}
        </div>
      ))}
    </div>
  );
});
