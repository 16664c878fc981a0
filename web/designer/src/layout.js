// Diagram layout for BPMN files without DI, e.g. a file imported from disk (versions from the
// server already come with one: the API adds it to stored models that have none). A layered
// layout: one horizontal band per lane (department), flow nodes in columns by their longest path
// from the start, so lanes stay selectable and their department can be chosen in the page.
// (npm bpmn-auto-layout 1.3 was tried first: it ignores lanes and throws on senior_card.bpmn.)

const SIZE = {
  "bpmn:StartEvent": [36, 36], "bpmn:EndEvent": [36, 36], "bpmn:IntermediateCatchEvent": [36, 36],
  "bpmn:IntermediateThrowEvent": [36, 36], "bpmn:BoundaryEvent": [36, 36],
};
const GATEWAY = [50, 50];
const TASK = [100, 80];
const COL = 160; // column width
const ROW = 120; // row height inside a lane
const POOL_HEADER = 30; // the pool's name band on the left
const LANE_HEADER = 30; // each lane's name band
const PAD_X = 30; // space before the first column inside a lane

/** True when the XML already has a diagram (BPMNDiagram with a plane). */
export function hasDiagram(xml) {
  return /<(\w+:)?BPMNDiagram[\s>]/.test(xml) && /<(\w+:)?BPMN(Shape|Edge)[\s>]/.test(xml);
}

/**
 * Give a diagram to ``xml`` (which has none): answers new XML with BPMNDiagram. ``moddle`` is the
 * modeler's BpmnModdle (``modeler.get("moddle")``).
 */
export async function addDiagram(xml, moddle) {
  const { rootElement: definitions } = await moddle.fromXML(xml, "bpmn:Definitions");
  return layered(definitions, moddle);
}

function sizeOf(node) {
  if (SIZE[node.$type]) return SIZE[node.$type];
  if (node.$instanceOf("bpmn:Gateway")) return GATEWAY;
  return TASK;
}

/** Leaf lanes of a lane set, top to bottom (child lane sets flattened). */
function leafLanes(laneSet) {
  const out = [];
  for (const lane of laneSet?.lanes || []) {
    if (lane.childLaneSet?.lanes?.length) out.push(...leafLanes(lane.childLaneSet));
    else out.push(lane);
  }
  return out;
}

/** Column of every node: longest path from the starts, back edges (loops) ignored. */
function columns(nodes, flows) {
  const out = new Map(nodes.map((n) => [n, []]));
  const inc = new Map(nodes.map((n) => [n, []]));
  for (const flow of flows) {
    if (out.has(flow.sourceRef) && out.has(flow.targetRef)) {
      out.get(flow.sourceRef).push(flow.targetRef);
      inc.get(flow.targetRef).push(flow.sourceRef);
    }
  }
  // Boundary events follow their host.
  for (const node of nodes) {
    if (node.attachedToRef && out.has(node.attachedToRef)) {
      out.get(node.attachedToRef).push(node);
      inc.get(node).push(node.attachedToRef);
    }
  }
  const back = new Set();
  const state = new Map();
  const roots = nodes.filter((n) => !inc.get(n).length);
  const visit = (node) => {
    state.set(node, 1);
    for (const next of out.get(node)) {
      if (state.get(next) === 1) back.add(`${node.id}>${next.id}`);
      else if (!state.has(next)) visit(next);
    }
    state.set(node, 2);
  };
  for (const node of [...roots, ...nodes]) if (!state.has(node)) visit(node);
  const column = new Map();
  const order = [];
  const indegree = new Map(nodes.map((n) => [n, inc.get(n).filter((p) => !back.has(`${p.id}>${n.id}`)).length]));
  const queue = nodes.filter((n) => indegree.get(n) === 0);
  for (const n of queue) column.set(n, 0);
  while (queue.length) {
    const node = queue.shift();
    order.push(node);
    for (const next of out.get(node)) {
      if (back.has(`${node.id}>${next.id}`)) continue;
      const step = next.attachedToRef === node ? 0 : 1;
      column.set(next, Math.max(column.get(next) ?? 0, column.get(node) + step));
      indegree.set(next, indegree.get(next) - 1);
      if (indegree.get(next) === 0) queue.push(next);
    }
  }
  for (const node of nodes) if (!column.has(node)) column.set(node, 0);
  return { column, order, back };
}

function layered(definitions, moddle) {
  const make = (type, attrs) => moddle.create(type, attrs);
  const bounds = (x, y, width, height) => make("dc:Bounds", { x, y, width, height });
  const collaboration = definitions.rootElements.find((e) => e.$instanceOf("bpmn:Collaboration"));
  const processes = definitions.rootElements.filter((e) => e.$instanceOf("bpmn:Process"));
  const participants = collaboration?.participants || [];
  const planeElement = [];
  const places = new Map(); // flow node -> {x, y, width, height}
  let top = 40;

  for (const process of processes) {
    const participant = participants.find((p) => p.processRef === process);
    const elements = process.flowElements || [];
    const nodes = elements.filter((e) => e.$instanceOf("bpmn:FlowNode"));
    const flows = elements.filter((e) => e.$instanceOf("bpmn:SequenceFlow"));
    const lanes = process.laneSets?.length ? process.laneSets.flatMap(leafLanes) : [];
    const laneOf = new Map();
    lanes.forEach((lane, index) => (lane.flowNodeRef || []).forEach((n) => laneOf.set(n, index)));
    const bands = Math.max(lanes.length, 1);
    const { column, order } = columns(nodes, flows);

    // Rows: each node takes the first free row of its (lane, column) cell, preferring the row of
    // a predecessor so straight paths stay straight.
    const taken = new Set();
    const row = new Map();
    const preds = new Map(nodes.map((n) => [n, []]));
    for (const flow of flows) if (preds.has(flow.targetRef)) preds.get(flow.targetRef).push(flow.sourceRef);
    const laneRows = new Array(bands).fill(1);
    for (const node of order) {
      if (node.attachedToRef) continue;
      const lane = laneOf.get(node) ?? 0;
      const wanted = preds.get(node).filter((p) => (laneOf.get(p) ?? 0) === lane && row.has(p)).map((p) => row.get(p));
      let r = wanted.length ? Math.min(...wanted) : 0;
      while (taken.has(`${lane}:${column.get(node)}:${r}`)) r += 1;
      taken.add(`${lane}:${column.get(node)}:${r}`);
      row.set(node, r);
      laneRows[lane] = Math.max(laneRows[lane], r + 1);
    }
    const width = POOL_HEADER + LANE_HEADER + PAD_X * 2 + COL * (Math.max(0, ...column.values()) + 1);
    const laneTop = [];
    let y = top;
    for (let lane = 0; lane < bands; lane += 1) {
      laneTop.push(y);
      y += laneRows[lane] * ROW;
    }
    const poolHeight = y - top;

    if (participant) {
      planeElement.push(make("bpmndi:BPMNShape", { id: `${participant.id}_di`, bpmnElement: participant,
        isHorizontal: true, bounds: bounds(100, top, width, poolHeight) }));
    }
    lanes.forEach((lane, index) => {
      planeElement.push(make("bpmndi:BPMNShape", { id: `${lane.id}_di`, bpmnElement: lane, isHorizontal: true,
        bounds: bounds(100 + POOL_HEADER, laneTop[index], width - POOL_HEADER, laneRows[index] * ROW) }));
    });
    const left = 100 + POOL_HEADER + LANE_HEADER + PAD_X;
    for (const node of nodes) {
      if (node.attachedToRef) continue;
      const [w, hgt] = sizeOf(node);
      const cx = left + column.get(node) * COL + COL / 2;
      const cy = laneTop[laneOf.get(node) ?? 0] + row.get(node) * ROW + ROW / 2;
      places.set(node, { x: cx - w / 2, y: cy - hgt / 2, width: w, height: hgt });
    }
    const perHost = new Map();
    for (const node of nodes) {
      if (!node.attachedToRef || !places.has(node.attachedToRef)) continue;
      const host = places.get(node.attachedToRef);
      const index = perHost.get(host) || 0;
      perHost.set(host, index + 1);
      places.set(node, { x: host.x + host.width - 18 - index * 40 - 18, y: host.y + host.height - 18, width: 36, height: 36 });
    }
    for (const node of nodes) {
      const p = places.get(node);
      if (!p) continue;
      const attrs = { id: `${node.id}_di`, bpmnElement: node, bounds: bounds(p.x, p.y, p.width, p.height) };
      if (node.$instanceOf("bpmn:ExclusiveGateway")) attrs.isMarkerVisible = true;
      planeElement.push(make("bpmndi:BPMNShape", attrs));
    }
    for (const flow of flows) {
      const a = places.get(flow.sourceRef);
      const b = places.get(flow.targetRef);
      if (!a || !b) continue;
      const blockers = [...places.values()].filter((p) => p !== a && p !== b);
      const waypoint = route(a, b, flow.sourceRef.attachedToRef ? "bottom" : "right", top + poolHeight, blockers)
        .map(([x, wy]) => make("dc:Point", { x: Math.round(x), y: Math.round(wy) }));
      planeElement.push(make("bpmndi:BPMNEdge", { id: `${flow.id}_di`, bpmnElement: flow, waypoint }));
    }
    top += poolHeight + 60;
  }
  const root = collaboration || processes[0];
  const plane = make("bpmndi:BPMNPlane", { id: `${root.id}_plane`, bpmnElement: root, planeElement });
  definitions.diagrams = [make("bpmndi:BPMNDiagram", { id: `${root.id}_diagram`, plane })];
  return moddle.toXML(definitions, { format: true }).then((r) => r.xml);
}

/** Orthogonal waypoints from shape a to shape b (back edges run under the pool's lower row). */
function route(a, b, exit, poolBottom, blockers) {
  const ay = a.y + a.height / 2;
  const by = b.y + b.height / 2;
  if (exit === "bottom") {
    const sx = a.x + a.width / 2;
    const sy = a.y + a.height;
    return [[sx, sy], [sx, by], [b.x, by]];
  }
  const sx = a.x + a.width;
  if (b.x >= sx) {
    const inTheWay = blockers.filter((p) => p.x > sx && p.x + p.width < b.x && p.y < ay && p.y + p.height > ay);
    if (Math.abs(ay - by) < 1 && inTheWay.length) {
      // Skips a column on the same row: pass under the steps in between instead of through them.
      const under = Math.max(...inTheWay.map((p) => p.y + p.height), a.y + a.height, b.y + b.height) + 12;
      const ax = a.x + a.width / 2;
      const bx = b.x + b.width / 2;
      return [[ax, a.y + a.height], [ax, under], [bx, under], [bx, b.y + b.height]];
    }
    if (Math.abs(ay - by) < 1) return [[sx, ay], [b.x, by]];
    const mx = Math.min(a.x + a.width / 2 + COL / 2, (sx + b.x) / 2); // turn in the gap after the source
    return [[sx, ay], [mx, ay], [mx, by], [b.x, by]];
  }
  // Back to an earlier column: down, left under the shapes, up into the target's bottom.
  const below = Math.min(Math.max(a.y + a.height, b.y + b.height) + 20, poolBottom - 8);
  const bx = b.x + b.width / 2;
  const ax = a.x + a.width / 2;
  return [[ax, a.y + a.height], [ax, below], [bx, below], [bx, b.y + b.height]];
}
