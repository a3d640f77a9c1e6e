import networkx as nx

import textopt as tx
from tests.helpers import Mix


def _graph():
    p = tx.Variable("p", role="prompt", requires_grad=True)
    x = tx.Variable("x", role="question")
    a = Mix("a", []).forward([p, x])
    b = Mix("b", []).forward([a, p])
    return p, x, a, b


def test_networkx_export_structure():
    p, x, a, b = _graph()
    g = tx.graph.to_networkx(b)
    assert isinstance(g, nx.DiGraph) and nx.is_directed_acyclic_graph(g)
    assert g.number_of_nodes() == 4 and g.number_of_edges() == 4
    assert g.has_edge(f"v{p.index}", f"v{a.index}") and g.has_edge(f"v{p.index}", f"v{b.index}")
    assert g.nodes[f"v{p.index}"]["requires_grad"] is True
    assert g.nodes[f"v{x.index}"]["requires_grad"] is False


def test_dot_and_mermaid():
    p, x, a, b = _graph()
    dot = tx.graph.to_dot(b)
    assert dot.startswith("digraph") and f"v{p.index} -> v{a.index}" in dot and dot.count("->") == 4
    mm = tx.graph.to_mermaid(b)
    assert mm.startswith("flowchart") and mm.count("-->") == 4 and "prompt" in mm


def test_deep_graph_export_is_iterative():
    v = tx.Variable("p", role="prompt", requires_grad=True)
    for i in range(3000):
        v = tx.concat([v], role=f"step {i}")
    assert tx.graph.to_networkx(v).number_of_nodes() == 3001
