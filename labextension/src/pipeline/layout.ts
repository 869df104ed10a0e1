/**
 * Auto-layout with elkjs: layered, left to right. ELK (about 1.5 MB) is loaded on first use.
 */
import type { ElkNode } from 'elkjs/lib/elk-api';

export interface ILayoutNode {
  id: string;
  width: number;
  height: number;
}

export interface ILayoutEdge {
  id: string;
  source: string;
  target: string;
}

type Elk = { layout(graph: ElkNode): Promise<ElkNode> };
let elk: Promise<Elk> | null = null;

function getElk(): Promise<Elk> {
  if (!elk) {
    elk = import('elkjs/lib/elk.bundled.js').then(m => {
      const ELK = (m.default ?? m) as unknown as new () => Elk;
      return new ELK();
    });
    elk.catch(() => (elk = null));
  }
  return elk;
}

/** Top-left positions for the nodes, layered left to right along the edges. */
export async function layoutGraph(
  nodes: ILayoutNode[],
  edges: ILayoutEdge[]
): Promise<Map<string, { x: number; y: number }>> {
  const engine = await getElk();
  const ids = new Set(nodes.map(n => n.id));
  const graph: ElkNode = {
    id: 'root',
    layoutOptions: {
      'elk.algorithm': 'layered',
      'elk.direction': 'RIGHT',
      'elk.layered.spacing.nodeNodeBetweenLayers': '90',
      'elk.spacing.nodeNode': '40',
      'elk.layered.nodePlacement.strategy': 'BRANDES_KOEPF',
      'elk.layered.considerModelOrder.strategy': 'NODES_AND_EDGES'
    },
    children: nodes.map(n => ({ id: n.id, width: n.width, height: n.height })),
    edges: edges
      .filter(
        e => ids.has(e.source) && ids.has(e.target) && e.source !== e.target
      )
      .map(e => ({ id: e.id, sources: [e.source], targets: [e.target] }))
  };
  const result = await engine.layout(graph);
  const positions = new Map<string, { x: number; y: number }>();
  for (const child of result.children ?? []) {
    positions.set(child.id, { x: child.x ?? 0, y: child.y ?? 0 });
  }
  return positions;
}
