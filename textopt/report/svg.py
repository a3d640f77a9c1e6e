"""Inline SVG for the HTML pages: the score curve and the computation graph (a layered layout of our own, so no
graphviz and no script is needed). Every text that reaches the SVG is HTML-escaped here."""
from __future__ import annotations

from html import escape

import networkx as nx

from ..functional import one_line

SERIES = (("train", "#1f77b4", "train (batch)"), ("val", "#d62728", "validation"))


def _fmt(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def curve_svg(points: list[dict], *, marks: list[int] = (), width: int = 680, height: int = 280) -> str:
    """``points``: ``{"step", "train", "val"}`` rows (None: no value). ``marks``: steps drawn as grey bars
    (reverted). Scores are plotted on [0, 1] (stretched when a score lies outside)."""
    left, right, top, bottom = 48, 150, 16, 36
    steps = [p["step"] for p in points] or [0]
    x0, x1 = min(steps), max(max(steps), min(steps) + 1)
    values = [p[k] for p in points for k, _, _ in SERIES if p.get(k) is not None]
    y0, y1 = min([0.0, *values]), max([1.0, *values])
    pw, ph = width - left - right, height - top - bottom

    def x(s):
        return left + (s - x0) / (x1 - x0) * pw

    def y(v):
        return top + (1 - (v - y0) / ((y1 - y0) or 1)) * ph
    out = [f'<svg width="{width}" height="{height}" role="img" '
           f'aria-label="score curve" class="curve">',
           f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fff" stroke="#999"/>']
    for s in marks:
        out.append(f'<rect x="{_fmt(x(s) - 4)}" y="{top}" width="8" height="{ph}" fill="#ccc" opacity="0.5">'
                   f'<title>step {s}: reverted</title></rect>')
    for i in range(5):
        v = y0 + (y1 - y0) * i / 4
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{_fmt(y(v))}" y2="{_fmt(y(v))}" stroke="#eee"/>'
                   f'<text x="{left - 6}" y="{_fmt(y(v) + 4)}" text-anchor="end" font-size="11">{v:.2f}</text>')
    every = max(1, (x1 - x0) // 10)
    for s in range(x0, x1 + 1, every):
        out.append(f'<text x="{_fmt(x(s))}" y="{top + ph + 16}" text-anchor="middle" font-size="11">{s}</text>')
    out.append(f'<text x="{left + pw / 2}" y="{height - 4}" text-anchor="middle" font-size="12">step</text>')
    for i, (key, color, label) in enumerate(SERIES):
        pts = [(p["step"], p[key]) for p in points if p.get(key) is not None]
        if len(pts) > 1:
            path = " ".join(f"{_fmt(x(s))},{_fmt(y(v))}" for s, v in pts)
            out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for s, v in pts:
            out.append(f'<circle cx="{_fmt(x(s))}" cy="{_fmt(y(v))}" r="4" fill="{color}">'
                       f'<title>step {s}: {escape(label)} {v:.3f}</title></circle>')
        if not pts:
            continue
        ly = top + 14 + 18 * i
        out.append(f'<rect x="{left + pw + 12}" y="{ly - 9}" width="12" height="12" fill="{color}"/>'
                   f'<text x="{left + pw + 30}" y="{ly + 1}" font-size="12">{escape(label)}</text>')
    if marks:
        ly = top + 14 + 18 * len(SERIES)
        out.append(f'<rect x="{left + pw + 12}" y="{ly - 9}" width="12" height="12" fill="#ccc"/>'
                   f'<text x="{left + pw + 30}" y="{ly + 1}" font-size="12">reverted</text>')
    out.append("</svg>")
    return "\n".join(out)


BOX_W, BOX_H, GAP_X, GAP_Y = 210, 58, 120, 24
ELLIPSIS = "\u2026"   # a box label cut to fit ends with it


def graph_svg(g: nx.DiGraph) -> str:
    """A graph from :func:`textopt.graph.to_networkx` (edges from input to output), inputs on the left: each
    node a box with its role and the start of its value (trainable leaves yellow), each edge labelled with its
    operation. The full value is the box's tooltip."""
    if g.number_of_nodes() == 0:
        return '<p class="muted">(empty graph)</p>'
    try:
        layers = [sorted(layer) for layer in nx.topological_generations(g)]
    except nx.NetworkXUnfeasible:   # a cycle cannot come from a forward pass; draw one column anyway
        layers = [sorted(g.nodes)]
    pos = {}
    for col, layer in enumerate(layers):
        for row, n in enumerate(layer):
            pos[n] = (20 + col * (BOX_W + GAP_X), 20 + row * (BOX_H + GAP_Y))
    width = 40 + len(layers) * (BOX_W + GAP_X) - GAP_X
    height = 40 + max(len(layer) for layer in layers) * (BOX_H + GAP_Y) - GAP_Y
    out = [f'<svg width="{width}" height="{height}" role="img" '
           f'aria-label="computation graph" class="graph">',
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
           'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs>']
    for a, b, d in g.edges(data=True):
        (ax, ay), (bx, by) = pos[a], pos[b]
        sx, sy, ex, ey = ax + BOX_W, ay + BOX_H / 2, bx, by + BOX_H / 2
        mx = (sx + ex) / 2
        out.append(f'<path d="M {sx} {sy} C {mx} {sy}, {mx} {ey}, {ex} {ey}" fill="none" stroke="#555" '
                   f'marker-end="url(#arrow)"/>'
                   f'<text x="{mx}" y="{(sy + ey) / 2 - 4}" text-anchor="middle" font-size="10" fill="#555">'
                   f'{escape(one_line(d.get("op", ""), 20, ELLIPSIS))}</text>')
    for n, d in g.nodes(data=True):
        nx_, ny = pos[n]
        fill = "#ffe9a8" if d.get("requires_grad") and d.get("leaf") else "#f4f6fb"
        grads = f" \u00b7 {d['grads']} gradient(s)" if d.get("grads") else ""
        out.append(f'<g><title>{escape(str(d.get("role", "")))}: {escape(str(d.get("value", "")))}</title>'
                   f'<rect x="{nx_}" y="{ny}" width="{BOX_W}" height="{BOX_H}" rx="6" fill="{fill}" stroke="#778"/>'
                   f'<text x="{nx_ + 8}" y="{ny + 18}" font-size="11" font-weight="bold">'
                   f'{escape(one_line(d.get("role", ""), 28, ELLIPSIS))}</text>'
                   f'<text x="{nx_ + 8}" y="{ny + 35}" font-size="10">'
                   f'{escape(one_line(d.get("value", ""), 36, ELLIPSIS))}</text>'
                   f'<text x="{nx_ + 8}" y="{ny + 50}" font-size="9" fill="#666">{escape(n)}{escape(grads)}</text></g>')
    out.append("</svg>")
    return "\n".join(out)
