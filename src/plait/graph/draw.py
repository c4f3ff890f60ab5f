"""Pictures of graphs: Graphviz DOT, SVG through ``dot``, and self-contained HTML.

``to_html`` needs nothing installed: it lays each graph out itself (nodes in
layers by their depth from the inputs, ordered to reduce crossings) and draws
inline SVG, followed by the graph as code and a table of its nodes. Nothing in
the page is fetched from the network.
"""

from __future__ import annotations

import html
import shutil
import subprocess
from typing import Any

from plait.graph.ir import CALL, CONST, IF, INPUT, OP, OUTPUT, TASK, WHILE, Graph, Node, _short, target_name

COLORS = {
    INPUT: "#d9f2d9",
    CONST: "#eeeeee",
    TASK: "#cfe2ff",
    OP: "#ffffff",
    CALL: "#fff3c4",
    IF: "#ffe0c2",
    WHILE: "#ffe0c2",
    OUTPUT: "#d9f2d9",
}


class DotNotFoundError(RuntimeError):
    """Graphviz's ``dot`` program is not installed."""


def label_lines(node: Node) -> tuple[str, str]:
    """Two lines describing a node: its name, and its opcode with the target."""
    op = node.op
    if op == INPUT:
        detail = "input"
    elif op == CONST:
        detail = f"const {_short(node.target, 24)}"
    elif op in (TASK, OP, CALL):
        detail = f"{op} {target_name(node.target)}"
    elif op == OUTPUT:
        detail = "output"
    else:
        detail = f"{op} ({', '.join(node.subgraphs)})"
    return f"%{node.name}", detail


# ----------------------------------------------------------------------------- DOT


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(graph: Graph) -> str:
    """Graphviz DOT text: one box per node, an edge per use, subgraphs as clusters."""
    lines = [
        f"digraph {_q(graph.name)} {{",
        "  rankdir=TB;",
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];',
        '  edge [color="#555555"];',
    ]
    _dot_graph(graph, "", lines, "  ")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_graph(graph: Graph, prefix: str, lines: list[str], indent: str) -> None:
    for node in graph._nodes:
        ident = prefix + node.name
        name, detail = label_lines(node)
        line = node.meta.get("line")
        label = f"{name}\n{detail}" + (f"\nline {line}" if line is not None else "")
        lines.append(f"{indent}{_q(ident)} [label={_q(label)}, fillcolor={_q(COLORS[node.op])}];")
        for inp in node.inputs:
            lines.append(f"{indent}{_q(prefix + inp.name)} -> {_q(ident)};")
        for slot, sub in node.subgraphs.items():
            sub_prefix = f"{ident}.{slot}/"
            cluster = f"cluster_{ident}.{slot}".replace("/", ".")
            lines.append(f"{indent}subgraph {_q(cluster)} {{")
            lines.append(f"{indent}  label={_q(f'%{node.name} {slot}')};")
            lines.append(f'{indent}  style="rounded,dashed"; color="#999999";')
            _dot_graph(sub, sub_prefix, lines, indent + "  ")
            lines.append(f"{indent}}}")
            if sub.output is not None:
                lines.append(
                    f"{indent}{_q(sub_prefix + sub.output.name)} -> {_q(ident)} [style=dashed, label={_q(slot)}];"
                )


def to_svg(graph: Graph) -> str:
    """SVG drawn by Graphviz's ``dot``; raises ``DotNotFoundError`` if it is not installed."""
    dot = shutil.which("dot")
    if dot is None:
        raise DotNotFoundError(
            "Graphviz's `dot` program is not installed, so to_svg cannot draw the graph; install "
            "Graphviz (e.g. `apt install graphviz`, `brew install graphviz`), or use graph.to_html(), "
            "which needs nothing installed"
        )
    done = subprocess.run([dot, "-Tsvg"], input=to_dot(graph), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"dot failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


# ----------------------------------------------------------------------------- HTML

CHAR_W = 7.0
BOX_H = 38
ROW_H = 74
GAP = 22
MARGIN = 16
BEND_W = 8

_STYLE = """
.plait-graph { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #222; }
.plait-graph h1 { font-size: 1.3em; } .plait-graph h2 { font-size: 1.1em; margin-top: 1.5em; }
.plait-graph svg text { font-family: Menlo, Consolas, monospace; font-size: 11px; }
.plait-graph pre { background: #f6f8fa; padding: 10px; overflow-x: auto; font-size: 12px; }
.plait-graph table { border-collapse: collapse; font-size: 12px; }
.plait-graph td, .plait-graph th { border: 1px solid #ddd; padding: 3px 8px; text-align: left;
  font-family: Menlo, Consolas, monospace; }
.plait-graph th { background: #f0f0f0; }
.plait-graph .legend span { display: inline-block; padding: 1px 8px; margin-right: 4px; border: 1px solid #888;
  border-radius: 4px; font-size: 12px; }
"""


class _Bend:
    """A point where an edge crosses a layer it does not stop at (Sugiyama's dummy node)."""

    __slots__ = ("pred",)

    def __init__(self, pred: Any) -> None:
        self.pred = pred


def _layout(
    graph: Graph,
) -> tuple[dict[Any, tuple[float, float, float]], dict[tuple[Node, Node], list], float, float]:
    """Lay a graph out in layers.

    Returns the position of each node (and bend) as ``(x, y, width)``, the
    chain of items each edge passes through (``(source, target) -> [source,
    bends..., target]``), and the drawing's size. A node's layer is its depth
    from the inputs; an edge that spans several layers gets a bend in each, so
    it runs between boxes rather than through them; rows are ordered by a few
    sweeps of the barycenter heuristic to reduce crossings.
    """
    depth: dict[Node, int] = {}
    for node in graph._nodes:
        depth[node] = 1 + max((depth[i] for i in node._inputs), default=-1)
    if graph.output is not None and len(graph._nodes) > 1:
        depth[graph.output] = max(depth[n] for n in graph._nodes[:-1]) + 1
    rows: dict[int, list[Any]] = {}
    preds: dict[Any, list[Any]] = {}
    chains: dict[tuple[Node, Node], list] = {}
    for node in graph._nodes:
        rows.setdefault(depth[node], []).append(node)
        preds[node] = []
        for inp in node.inputs:
            chain: list[Any] = [inp]
            for d in range(depth[inp] + 1, depth[node]):
                bend = _Bend(chain[-1])
                rows.setdefault(d, []).append(bend)
                preds[bend] = [chain[-1]]
                chain.append(bend)
            preds[node].append(chain[-1])
            chain.append(node)
            chains[(inp, node)] = chain
    order: dict[Any, float] = {}
    for row in rows.values():
        for i, item in enumerate(row):
            order[item] = i
    for _ in range(3):
        for d in sorted(rows):
            if d == 0:
                continue
            row = rows[d]
            row.sort(
                key=lambda it: sum(order[p] for p in preds[it]) / len(preds[it]) if preds[it] else order[it]
            )
            for i, item in enumerate(row):
                order[item] = i
    widths = {
        item: BEND_W if isinstance(item, _Bend) else max(len(t) for t in label_lines(item)) * CHAR_W + 20
        for row in rows.values()
        for item in row
    }
    row_width = {d: sum(widths[it] for it in row) + GAP * (len(row) - 1) for d, row in rows.items()}
    total_w = max(row_width.values(), default=0) + 2 * MARGIN
    pos: dict[Any, tuple[float, float, float]] = {}
    for d, row in rows.items():
        x = MARGIN + (total_w - 2 * MARGIN - row_width[d]) / 2
        for item in row:
            pos[item] = (x, MARGIN + d * ROW_H, widths[item])
            x += widths[item] + GAP
    total_h = MARGIN * 2 + (max(rows, default=0) * ROW_H) + BOX_H
    return pos, chains, total_w, total_h


def _svg(graph: Graph, ident: str) -> str:
    pos, chains, width, height = _layout(graph)
    e = html.escape
    parts = [
        f'<svg width="{width:.0f}" height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'role="img" aria-label="{e(graph.name)}">',
        f'<defs><marker id="{ident}-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs>',
    ]
    out_ports: dict[Node, list[Any]] = {}
    in_ports: dict[Node, list[Any]] = {}
    for (src, dst), chain in chains.items():
        out_ports.setdefault(src, []).append(chain[1])
        in_ports.setdefault(dst, []).append(chain[-2])

    ranks: dict[tuple[Node, bool], dict[Any, int]] = {}

    def port(node: Node, ends: list[Any], end: Any, out: bool) -> float:
        # spread a node's edge ends along its side, in the order of the items at their other end
        rank = ranks.get((node, out))
        if rank is None:
            ordered = sorted(ends, key=lambda it: pos[it][0])
            rank = ranks[(node, out)] = {it: i for i, it in enumerate(ordered)}
        x, _, w = pos[node]
        return x + w * (rank[end] + 1) / (len(rank) + 1)

    for (src, dst), chain in chains.items():
        points = [(port(src, out_ports[src], chain[1], True), pos[src][1] + BOX_H)]
        for bend in chain[1:-1]:
            bx, by, bw = pos[bend]
            points += [(bx + bw / 2, by), (bx + bw / 2, by + BOX_H)]
        points.append((port(dst, in_ports[dst], chain[-2], False), pos[dst][1] - 1))
        d = [f"M {points[0][0]:.1f} {points[0][1]:.1f}"]
        for i in range(1, len(points)):
            (ax, ay), (bx, by) = points[i - 1], points[i]
            if i % 2 == 0:  # through a bend: straight down
                d.append(f"L {bx:.1f} {by:.1f}")
            else:
                mid = (ay + by) / 2
                d.append(f"C {ax:.1f} {mid:.1f}, {bx:.1f} {mid:.1f}, {bx:.1f} {by:.1f}")
        parts.append(
            f'<path d="{" ".join(d)}" fill="none" stroke="#555" stroke-width="1.2" '
            f'marker-end="url(#{ident}-arrow)"/>'
        )
    for node in graph._nodes:
        x, y, w = pos[node]
        name, detail = label_lines(node)
        tip = [f"{name} = {node.op}"]
        tip += [f"{k}: {_short(v, 80)}" for k, v in node.meta.items()]
        parts.append(f'<g class="node" id="{e(ident)}-{e(node.name)}"><title>{e(chr(10).join(tip))}</title>')
        dash = ' stroke-dasharray="4 2"' if node.subgraphs else ""
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{BOX_H}" rx="6" '
            f'fill="{COLORS[node.op]}" stroke="#666"{dash}/>'
        )
        parts.append(
            f'<text x="{x + w / 2:.1f}" y="{y + 15:.1f}" text-anchor="middle" font-weight="bold">{e(name)}</text>'
        )
        parts.append(f'<text x="{x + w / 2:.1f}" y="{y + 30:.1f}" text-anchor="middle">{e(detail)}</text>')
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)


def _sections(graph: Graph, title: str, ident: str, out: list[str]) -> None:
    out.append(f"<h2>{html.escape(title)}</h2>")
    out.append(_svg(graph, ident))
    for node in graph._nodes:
        for slot, sub in node.subgraphs.items():
            _sections(sub, f"{title} \u203a %{node.name} {slot}", f"{ident}-{node.name}-{slot}", out)


def _table(graph: Graph) -> str:
    e = html.escape
    rows = [
        "<tr><th>node</th><th>opcode</th><th>target</th><th>reads</th><th>variable</th><th>line</th></tr>"
    ]
    for node, path in graph.walk():
        if node.op in (TASK, OP, CALL):
            target = target_name(node.target)
        elif node.op in (INPUT, CONST):
            target = _short(node.target)
        else:
            target = ""
        reads = ", ".join(f"%{n.name}" for n in node.inputs)
        rows.append(
            f"<tr><td>{e(path)}</td><td>{e(node.op)}</td><td>{e(target)}</td><td>{e(reads)}</td>"
            f"<td>{e(str(node.meta.get('var', '')))}</td><td>{e(str(node.meta.get('line', '')))}</td></tr>"
        )
    return "<table>" + "".join(rows) + "</table>"


def to_html(graph: Graph, *, standalone: bool = True) -> str:
    """A readable, self-contained HTML view; ``standalone=False`` gives a fragment (Jupyter)."""
    e = html.escape
    body: list[str] = [f'<div class="plait-graph"><style>{_STYLE}</style>']
    body.append(f"<h1>plait graph {e(graph.name)}</h1>")
    body.append(
        '<p class="legend">'
        + "".join(f'<span style="background:{c}">{e(op)}</span>' for op, c in COLORS.items() if op != OUTPUT)
        + "</p>"
    )
    _sections(graph, graph.name, "g", body)
    body.append("<h2>Code</h2>")
    body.append(f"<pre>{e(str(graph))}</pre>")
    body.append("<h2>Nodes</h2>")
    body.append(_table(graph))
    body.append("</div>")
    fragment = "\n".join(body)
    if not standalone:
        return fragment
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>plait graph {e(graph.name)}</title>\n</head>\n<body>\n{fragment}\n</body>\n</html>\n"
    )
