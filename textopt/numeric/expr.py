"""A restricted evaluator for LLM-written math expressions (never ``eval``).

``compile_expression("c0 * sin(c1 * x) + c2", variables=("x",))`` parses with :mod:`ast`, accepts only numbers,
the given variable names, constants ``c0..c{max_constants-1}``, ``+ - * / ** %``, unary ``+ -`` and calls to a
fixed set of torch functions, and returns an :class:`Expression` evaluated by walking the tree with torch ops
(so it is differentiable w.r.t. the constants). Literals become float tensors, so ``9**9**9`` gives ``inf``
instead of hanging on big integers. Anything else raises :class:`~textopt.errors.ExpressionError`.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Callable

import torch

from ..errors import ExpressionError

FUNCTIONS: dict[str, Callable] = {
    "sin": torch.sin, "cos": torch.cos, "tan": torch.tan, "exp": torch.exp, "log": torch.log,
    "sqrt": torch.sqrt, "abs": torch.abs, "tanh": torch.tanh, "sigmoid": torch.sigmoid, "sinh": torch.sinh,
    "cosh": torch.cosh, "arctan": torch.atan, "atan": torch.atan,
}
_BINOPS = {ast.Add: torch.add, ast.Sub: torch.sub, ast.Mult: torch.mul, ast.Div: torch.div, ast.Pow: torch.pow,
           ast.Mod: torch.remainder}
_CONST = re.compile(r"c(\d+)$")
MAX_CHARS = 400
MAX_NODES = 200


@dataclass(frozen=True)
class Expression:
    source: str
    tree: ast.AST
    constants: tuple[int, ...]   # constant indices used, sorted
    variables: tuple[str, ...]

    def __call__(self, theta: torch.Tensor, **values: torch.Tensor) -> torch.Tensor:
        missing = [v for v in self.variables if v not in values]
        if missing:
            raise ExpressionError(f"evaluating {self.source!r} needs values for {missing}")
        if self.constants and self.constants[-1] >= theta.numel():
            raise ExpressionError(f"{self.source!r} uses c{self.constants[-1]} but only {theta.numel()} constants "
                                  "are available")
        like = next(iter(values.values()))
        return _eval(self.tree, theta, values, like) + torch.zeros_like(like)


def _eval(node: ast.AST, theta, values, like):
    if isinstance(node, ast.Expression):
        return _eval(node.body, theta, values, like)
    if isinstance(node, ast.Constant):
        return torch.tensor(float(node.value), dtype=like.dtype, device=like.device)
    if isinstance(node, ast.Name):
        m = _CONST.match(node.id)
        return theta[int(m.group(1))] if m else values[node.id]
    if isinstance(node, ast.UnaryOp):
        v = _eval(node.operand, theta, values, like)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp):
        return _BINOPS[type(node.op)](_eval(node.left, theta, values, like), _eval(node.right, theta, values, like))
    if isinstance(node, ast.Call):
        return FUNCTIONS[node.func.id](_eval(node.args[0], theta, values, like))
    raise ExpressionError(f"unsupported syntax {type(node).__name__}")  # pragma: no cover (checked at compile)


def compile_expression(source: str, variables: tuple[str, ...] = ("x",), max_constants: int = 8) -> Expression:
    """Parse and check ``source``; raise ExpressionError naming the first thing that is not allowed."""
    if not isinstance(source, str) or not source.strip():
        raise ExpressionError("the expression is empty; write a Python expression over "
                              f"{', '.join(variables)} and constants c0, c1, ...")
    source = source.strip().strip("`").strip()
    if source.startswith("y =") or source.startswith("y="):
        source = source.split("=", 1)[1].strip()
    if len(source) > MAX_CHARS:
        raise ExpressionError(f"the expression has {len(source)} characters; the limit is {MAX_CHARS}")
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"{source!r} is not a valid Python expression: {exc.msg}") from None
    nodes = list(ast.walk(tree))
    if len(nodes) > MAX_NODES:
        raise ExpressionError(f"the expression is too large ({len(nodes)} syntax nodes, limit {MAX_NODES})")
    used: set[int] = set()
    for node in nodes:
        if isinstance(node, (ast.Expression, ast.Load)) or type(node) in _BINOPS or isinstance(
                node, (ast.UAdd, ast.USub)):
            continue
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(
                node.value, bool):
            continue
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            continue
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
            continue
        if isinstance(node, ast.Name):
            m = _CONST.match(node.id)
            if m and int(m.group(1)) < max_constants:
                used.add(int(m.group(1)))
                continue
            if node.id in variables or node.id in FUNCTIONS:
                continue
            raise ExpressionError(f"unknown name {node.id!r} in {source!r}: use {', '.join(variables)}, constants "
                                  f"c0..c{max_constants - 1} and the functions {', '.join(sorted(FUNCTIONS))}")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS \
                and len(node.args) == 1 and not node.keywords:
            continue
        raise ExpressionError(f"{type(node).__name__} is not allowed in {source!r}: only arithmetic, numbers, "
                              f"{', '.join(variables)}, constants c0..c{max_constants - 1} and one-argument calls to "
                              f"{', '.join(sorted(FUNCTIONS))}")
    for node in nodes:  # function names may only appear as callees
        if isinstance(node, ast.Name) and node.id in FUNCTIONS and not any(
                isinstance(p, ast.Call) and p.func is node for p in nodes):
            raise ExpressionError(f"{node.id!r} must be called, e.g. {node.id}(x)")
    return Expression(source, tree, tuple(sorted(used)), tuple(variables))
