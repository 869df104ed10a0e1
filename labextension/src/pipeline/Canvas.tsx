import { TranslationBundle } from '@jupyterlab/translation';
import {
  applyEdgeChanges,
  applyNodeChanges,
  Background,
  BackgroundVariant,
  Connection,
  Edge,
  EdgeChange,
  getViewportForBounds,
  MiniMap,
  NodeChange,
  ReactFlow,
  useReactFlow,
  useStore,
  useStoreApi,
  Viewport
} from '@xyflow/react';
import * as React from 'react';

import { RUN_MIME } from '../mime';
import { GraphBuilder, NODE_WIDTH, StageNode as StageNodeType } from './graph';
import { layoutGraph } from './layout';
import { IPipelineState, PipelineModel } from './model';
import { StageNode } from './StageNode';

const NODE_TYPES = { stage: StageNode };
// A margin wider than the 40 px where dragging a connection pans the canvas.
const FIT_PADDING = 64;
// A fit never zooms out below this: node text stays readable (the example's three stages are
// drawn at 0.6 or more in CANVAS_MIN, see PipelineEditor.tsx). A graph that needs less shows
// from its start (left, top) at this zoom; the minimap and panning reach the rest.
const FIT_MIN_ZOOM = 0.6;
const FIT_MAX_ZOOM = 1.25;

/** Commands the toolbar sends to the canvas (it owns the React Flow instance). */
export interface ICanvasHandle {
  fitView(): void;
  autoLayout(): Promise<void>;
  /** The centre of the visible canvas in flow coordinates (where a clicked run lands). */
  center(): { x: number; y: number };
}

export interface ICanvasProps {
  model: PipelineModel;
  state: IPipelineState;
  trans: TranslationBundle;
  handle: React.MutableRefObject<ICanvasHandle | null>;
  /** Kept across remounts (the canvas unmounts while the editor is hidden). */
  viewport: React.MutableRefObject<Viewport | null>;
  /**
   * Whether the view follows size changes with a fit (null: not decided yet); kept across
   * remounts as the viewport is.
   */
  autoFit: React.MutableRefObject<boolean | null>;
}

/**
 * The React Flow canvas: nodes and edges derived from the spec (see GraphBuilder), local
 * selection/drag state merged in, edits sent to the model.
 */
export function Canvas(props: ICanvasProps): JSX.Element {
  const { model, state, trans } = props;
  const flow = useReactFlow<StageNodeType, Edge>();
  const builder = React.useRef<GraphBuilder>(new GraphBuilder());
  const wrapper = React.useRef<HTMLDivElement>(null);
  const stageStatus = state.runView?.detail?.stages ?? null;
  const { spec, templates, templateErrors, issues } = state;

  const graph = React.useMemo(
    () =>
      spec
        ? builder.current.build({
            spec,
            templates,
            templateErrors,
            stageStatus,
            issues
          })
        : { nodes: [] as StageNodeType[], edges: [] as Edge[] },
    [spec, templates, templateErrors, stageStatus, issues]
  );

  const [nodes, setNodes] = React.useState<StageNodeType[]>(graph.nodes);
  const [edges, setEdges] = React.useState<Edge[]>(graph.edges);
  // Merge the derived graph into the canvas's own state (selection, sizes, a drag) as a
  // queued update before paint. (Not a render-phase update: React drops those when a
  // higher-priority update, e.g. a size measurement, is rebased over them.)
  const selectedRef = React.useRef(state.selected);
  selectedRef.current = state.selected;
  const mergedGraph = React.useRef(graph);
  React.useLayoutEffect(() => {
    if (mergedGraph.current === graph) {
      return;
    }
    mergedGraph.current = graph;
    setNodes(current => mergeNodes(current, graph.nodes, selectedRef.current));
    setEdges(current => mergeEdges(current, graph.edges));
  }, [graph]);
  const nodesRef = React.useRef(nodes);
  nodesRef.current = nodes;
  const edgesRef = React.useRef(edges);
  edgesRef.current = edges;

  // A selection made outside the canvas (a new stage, an issue clicked) shows on it.
  const pushedSelection = React.useRef<string | null>(null);
  React.useEffect(() => {
    const selected = state.selected;
    if (selected === pushedSelection.current) {
      return;
    }
    pushedSelection.current = selected;
    setNodes(ns =>
      ns.map(n =>
        !!n.selected === (n.id === selected)
          ? n
          : { ...n, selected: n.id === selected }
      )
    );
    setEdges(es => es.map(e => (e.selected ? { ...e, selected: false } : e)));
  }, [state.selected]);

  // Selection made on the canvas (clicks, box select, Ctrl+A, Escape) goes to the model:
  // one selected stage is inspected. Nodes that merely disappear (a rename, an undo) do not
  // count, so a selection the model made itself is not undone by them.
  const selectionTouched = React.useRef(false);
  React.useEffect(() => {
    if (!selectionTouched.current) {
      return;
    }
    selectionTouched.current = false;
    const selected = nodes.filter(n => n.selected);
    const name = selected.length === 1 ? selected[0].id : null;
    pushedSelection.current = name;
    model.select(name);
  }, [nodes, model]);

  const onNodesChange = React.useCallback(
    (changes: NodeChange<StageNodeType>[]) => {
      if (changes.some(c => c.type === 'select')) {
        selectionTouched.current = true;
      }
      setNodes(ns =>
        applyNodeChanges(
          changes.filter(c => c.type !== 'remove'),
          ns
        )
      );
    },
    []
  );
  const onEdgesChange = React.useCallback(
    (changes: EdgeChange<Edge>[]) =>
      setEdges(es =>
        applyEdgeChanges(
          changes.filter(c => c.type !== 'remove'),
          es
        )
      ),
    []
  );
  const onConnect = React.useCallback(
    (c: Connection) => {
      model.connect(
        c.source,
        c.sourceHandle ?? null,
        c.target,
        c.targetHandle ?? null
      );
    },
    [model]
  );
  const onNodeDragStop = React.useCallback(
    (_: unknown, __: StageNodeType, dragged: StageNodeType[]) => {
      model.setPositions(new Map(dragged.map(n => [n.id, n.position])));
    },
    [model]
  );

  const onDragOver = React.useCallback((event: React.DragEvent) => {
    if (event.dataTransfer.types.includes(RUN_MIME)) {
      event.preventDefault();
      event.dataTransfer.dropEffect = 'copy';
    }
  }, []);
  const onDrop = React.useCallback(
    (event: React.DragEvent) => {
      const ids = runIdsFromDrag(event.dataTransfer.getData(RUN_MIME));
      if (!ids.length) {
        return;
      }
      event.preventDefault();
      const at = flow.screenToFlowPosition({
        x: event.clientX,
        y: event.clientY
      });
      ids.forEach((id, i) => {
        void model.addStageFromRun(id, {
          x: at.x - NODE_WIDTH / 2 + i * 40,
          y: at.y - 20 + i * 40
        });
      });
      wrapper.current?.focus({ preventScroll: true });
    },
    [flow, model]
  );

  // Fit the stages into the pane React Flow measured, at a readable zoom (FIT_MIN_ZOOM).
  const storeApi = useStoreApi<StageNodeType, Edge>();
  const fit = React.useCallback(
    (duration?: number): Promise<boolean> => {
      const { width, height } = storeApi.getState();
      const shown = flow.getNodes();
      if (!shown.length || !width || !height) {
        return Promise.resolve(false);
      }
      const bounds = flow.getNodesBounds(shown);
      const view = getViewportForBounds(
        bounds,
        width,
        height,
        FIT_MIN_ZOOM,
        FIT_MAX_ZOOM,
        `${FIT_PADDING}px`
      );
      if (bounds.width * view.zoom > width - 2 * FIT_PADDING) {
        view.x = FIT_PADDING - bounds.x * view.zoom;
      }
      if (bounds.height * view.zoom > height - 2 * FIT_PADDING) {
        view.y = FIT_PADDING - bounds.y * view.zoom;
      }
      return flow.setViewport(view, duration ? { duration } : undefined);
    },
    [flow, storeApi]
  );
  const autoFit = props.autoFit;
  // Fit view (the button, F, auto-layout): fit now, and again when the canvas changes size,
  // until the user pans or zooms by hand.
  const fitView = React.useCallback(() => {
    autoFit.current = true;
    void fit(200);
  }, [fit, autoFit]);

  const onKeyDown = React.useCallback(
    (event: React.KeyboardEvent) => {
      if (isTextInput(event.target)) {
        return;
      }
      const accel = event.ctrlKey || event.metaKey;
      const key = event.key.toLowerCase();
      if ((event.key === 'Delete' || event.key === 'Backspace') && !accel) {
        const stages = nodesRef.current.filter(n => n.selected).map(n => n.id);
        const gone = new Set(stages);
        const links = edgesRef.current
          .filter(e => e.selected && !gone.has(e.source) && !gone.has(e.target))
          .map(e => e.id);
        if (stages.length || links.length) {
          event.preventDefault();
          event.stopPropagation();
          model.remove(stages, links);
          // The focused node or edge is gone: keep the keys (undo) on the canvas.
          wrapper.current?.focus({ preventScroll: true });
        }
      } else if (accel && key === 'a') {
        event.preventDefault();
        event.stopPropagation();
        setNodes(ns =>
          ns.map(n => (n.selected ? n : { ...n, selected: true }))
        );
        setEdges(es =>
          es.map(e => (e.selected ? e : { ...e, selected: true }))
        );
      } else if (accel && key === 'z') {
        event.preventDefault();
        event.stopPropagation();
        if (event.shiftKey) {
          model.redo();
        } else {
          model.undo();
        }
      } else if (accel && key === 'y') {
        event.preventDefault();
        event.stopPropagation();
        model.redo();
      } else if (
        !accel &&
        !event.altKey &&
        (key === 'f' || event.key === '!')
      ) {
        event.preventDefault();
        fitView();
      } else if (event.key === 'Escape') {
        selectionTouched.current = true;
        setNodes(ns =>
          ns.map(n => (n.selected ? { ...n, selected: false } : n))
        );
        setEdges(es =>
          es.map(e => (e.selected ? { ...e, selected: false } : e))
        );
      }
    },
    [model, fitView]
  );

  // Clicks on the pane do not move the focus (d3-zoom prevents it): take it, so keys work.
  const onMouseDownCapture = React.useCallback((event: React.MouseEvent) => {
    const el = wrapper.current;
    if (
      el &&
      !isTextInput(event.target) &&
      !el.contains(document.activeElement)
    ) {
      el.focus({ preventScroll: true });
    }
  }, []);

  React.useImperativeHandle(
    props.handle,
    () => ({
      fitView,
      center: () => {
        const box = wrapper.current?.getBoundingClientRect();
        if (!box) {
          return { x: 0, y: 0 };
        }
        return flow.screenToFlowPosition({
          x: box.left + box.width / 2,
          y: box.top + box.height / 2
        });
      },
      autoLayout: async () => {
        const current = flow.getNodes();
        if (!current.length) {
          return;
        }
        const positions = await layoutGraph(
          current.map(n => ({
            id: n.id,
            width: n.measured?.width ?? NODE_WIDTH,
            height: n.measured?.height ?? 120
          })),
          flow
            .getEdges()
            .map(e => ({ id: e.id, source: e.source, target: e.target }))
        );
        model.setPositions(positions);
        requestAnimationFrame(() => fitView());
      }
    }),
    [flow, model, fitView]
  );

  const onMoveEnd = React.useCallback(
    (_: unknown, viewport: Viewport) => {
      props.viewport.current = viewport;
    },
    [props.viewport]
  );
  const initialViewport = React.useRef(props.viewport.current);
  // Fit on open, and again while the nodes or the canvas change size (templates bring ports,
  // the dock settles its layout, the editor is resized, a side column opens), until the user
  // moves the view by hand; Fit view starts it again. Not for a pipeline that opened empty (its
  // first stage lands where it was dropped).
  if (autoFit.current === null && state.ready && state.spec) {
    autoFit.current = graph.nodes.length > 0;
  }
  // The size React Flow itself measured for the pane (fitting with any other is stale).
  const box = useStore(s => `${s.width}x${s.height}`);
  const measuredKey = nodes
    .map(n => `${n.measured?.width ?? 0}x${n.measured?.height ?? 0}`)
    .join(',');
  const allMeasured =
    nodes.length > 0 &&
    nodes.every(n => n.measured?.width && n.measured?.height);
  React.useLayoutEffect(() => {
    if (
      autoFit.current &&
      allMeasured &&
      !box.startsWith('0x') &&
      !box.endsWith('x0')
    ) {
      void fit().then(() => {
        if (wrapper.current) {
          wrapper.current.dataset.fitted = 'true';
        }
      });
    }
  }, [fit, allMeasured, measuredKey, box]);
  const onMoveStart = React.useCallback(
    (event: unknown) => {
      if (event) {
        autoFit.current = false; // the user panned or zoomed
      }
    },
    [autoFit]
  );

  return (
    <div
      ref={wrapper}
      className="jp-mlp-PipelineCanvas"
      tabIndex={0}
      aria-label={trans.__('Pipeline canvas')}
      onKeyDown={onKeyDown}
      onMouseDownCapture={onMouseDownCapture}
      onDragOver={onDragOver}
      onDrop={onDrop}
    >
      <ReactFlow<StageNodeType, Edge>
        nodes={nodes}
        edges={edges}
        nodeTypes={NODE_TYPES}
        onNodesChange={onNodesChange}
        onEdgesChange={onEdgesChange}
        onConnect={onConnect}
        onNodeDragStop={onNodeDragStop}
        onMoveStart={onMoveStart}
        onMoveEnd={onMoveEnd}
        deleteKeyCode={null}
        selectionKeyCode="Shift"
        multiSelectionKeyCode={['Meta', 'Control']}
        defaultViewport={initialViewport.current ?? undefined}
        minZoom={0.05}
        maxZoom={2}
        elevateEdgesOnSelect
        defaultEdgeOptions={EDGE_OPTIONS}
      >
        <Background variant={BackgroundVariant.Dots} gap={20} size={1} />
        <MiniMap
          pannable
          zoomable
          className="jp-mlp-PipelineCanvas-minimap"
          nodeClassName={miniMapClass}
          style={MINIMAP_STYLE}
          ariaLabel={trans.__('Overview')}
        />
      </ReactFlow>
      {spec && !Object.keys(spec.stages).length ? (
        <div className="jp-mlp-PipelineCanvas-empty">
          {trans.__('Drag a pinned run here to make it a stage.')}
        </div>
      ) : null}
    </div>
  );
}

const EDGE_OPTIONS = { type: 'default' };
const MINIMAP_STYLE = { width: 140, height: 90 };

function miniMapClass(node: StageNodeType): string {
  const status = node.data.status?.status;
  return status
    ? `jp-mlp-MiniNode jp-mlp-MiniNode-${status}`
    : 'jp-mlp-MiniNode';
}

/** Keep each node's local state (selection, measured size, a drag in progress). */
function mergeNodes(
  current: StageNodeType[],
  derived: StageNodeType[],
  selected: string | null
): StageNodeType[] {
  const byId = new Map(current.map(n => [n.id, n]));
  return derived.map(d => {
    const c = byId.get(d.id);
    if (!c) {
      // A new node (added, renamed, back by undo) is selected if the model says so.
      return d.id === selected ? { ...d, selected: true } : d;
    }
    if (
      c.data === d.data &&
      c.position.x === d.position.x &&
      c.position.y === d.position.y
    ) {
      return c;
    }
    if (c.data === d.data && !c.dragging) {
      return { ...c, position: d.position };
    }
    return {
      ...d,
      selected: c.selected,
      measured: c.measured,
      dragging: c.dragging,
      position: c.dragging ? c.position : d.position
    };
  });
}

function mergeEdges(current: Edge[], derived: Edge[]): Edge[] {
  const byId = new Map(current.map(e => [e.id, e]));
  return derived.map(d => {
    const c = byId.get(d.id);
    if (!c) {
      return d;
    }
    if (
      c === d ||
      (!!c.animated === !!d.animated && c.className === d.className)
    ) {
      return c;
    }
    return { ...d, selected: c.selected };
  });
}

/**
 * The runs in a drag: `{"id": ...}` or `{"ids": [...]}` JSON (the palette, the runs sidebar's
 * rows), a JSON list of ids, or a bare id.
 */
export function runIdsFromDrag(data: string): string[] {
  const text = data.trim();
  if (!text) {
    return [];
  }
  const isId = (v: unknown): v is string =>
    typeof v === 'string' && v.length > 0;
  try {
    const parsed = JSON.parse(text) as unknown;
    if (isId(parsed)) {
      return [parsed];
    }
    if (Array.isArray(parsed)) {
      return parsed.filter(isId);
    }
    if (parsed && typeof parsed === 'object') {
      const obj = parsed as Record<string, unknown>;
      if (Array.isArray(obj.ids)) {
        return obj.ids.filter(isId);
      }
      if (isId(obj.id)) {
        return [obj.id];
      }
    }
    return [];
  } catch {
    return /^[0-9a-f]{6,64}$/i.test(text) ? [text] : [];
  }
}

function isTextInput(target: EventTarget | null): boolean {
  const el = target as HTMLElement | null;
  if (!el || !el.tagName) {
    return false;
  }
  const tag = el.tagName.toLowerCase();
  return (
    tag === 'input' ||
    tag === 'textarea' ||
    tag === 'select' ||
    el.isContentEditable
  );
}
