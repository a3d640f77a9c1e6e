"""Graph export: networkx DiGraph (edges point from input to output), DOT and Mermaid text."""
from __future__ import annotations

from collections import deque

import networkx as nx

from .variable import Variable


def _walk(root: Variable):
    """All variables reachable from ``root`` through node inputs (iterative), and the edges."""
    seen = {id(root): root}
    edges = []
    queue = deque([root])
    while queue:
        var = queue.popleft()
        if var.node is None:
            continue
        for pos, inp in enumerate(var.node.inputs):
            edges.append((inp, var, var.node.name, pos))
            if id(inp) not in seen:
                seen[id(inp)] = inp
                queue.append(inp)
    return list(seen.values()), edges


def _vid(v: Variable) -> str:
    return f"v{v.index}"


def to_networkx(root: Variable) -> nx.DiGraph:
    variables, edges = _walk(root)
    g = nx.DiGraph()
    for v in variables:
        g.add_node(_vid(v), role=v.role, value=v.short(80), requires_grad=v.requires_grad, leaf=v.is_leaf,
                   grads=len(v.grad) if v.is_text else None)
    for src, dst, op, pos in edges:
        g.add_edge(_vid(src), _vid(dst), op=op, position=pos)
    return g


def _label(data: dict) -> str:
    text = f"{data['role']}\\n{data['value'][:40]}"
    return text.replace('"', "'")


def to_dot(root: Variable) -> str:
    g = to_networkx(root)
    lines = ["digraph textopt {", "  rankdir=LR;", "  node [shape=box, fontsize=10];"]
    for n, d in g.nodes(data=True):
        style = ', style=filled, fillcolor="#ffe9a8"' if d["requires_grad"] and d["leaf"] else ""
        lines.append(f'  {n} [label="{_label(d)}"{style}];')
    for a, b, d in g.edges(data=True):
        lines.append(f'  {a} -> {b} [label="{d["op"]}"];')
    lines.append("}")
    return "\n".join(lines)


def to_mermaid(root: Variable) -> str:
    g = to_networkx(root)
    lines = ["flowchart LR"]
    for n, d in g.nodes(data=True):
        label = _label(d).replace("\\n", "<br/>").replace("[", "(").replace("]", ")")
        lines.append(f'  {n}["{label}"]')
    for a, b, d in g.edges(data=True):
        lines.append(f"  {a} -->|{d['op']}| {b}")
    return "\n".join(lines)
