"""Shape of the overhead benchmark's graph, shared by both workers (standard library only).

``groups`` groups, each: a chain of ``chain`` LLM calls (the first one takes the learnable system prompt and a
question that needs no grad; each next call takes the previous output), then a fan-out of ``fanout`` LLM calls
on the chain's end, joined by one sum/concat. One final sum/concat over every group is the loss.
Nodes (operations) = groups * (chain + fanout + 1) + 1.
"""
from __future__ import annotations

CHAIN = 20
FANOUT = 4


def groups_for(n_nodes: int, chain: int = CHAIN, fanout: int = FANOUT) -> int:
    return max(1, round((n_nodes - 1) / (chain + fanout + 1)))


def node_count(groups: int, chain: int = CHAIN, fanout: int = FANOUT) -> int:
    return groups * (chain + fanout + 1) + 1
