"""JSON schema -> a flat decoding plan for the local engine's constrained JSON (see ``constrain_json.py``).

A plan is a list of ``Slot``: literals (braces, keys, colons, commas, opening quotes) and value slots (``str``,
``num``, ``choice``, and ``sep`` — an array separator that adds one more item or closes the array). ``plan_rest``
gives the cheapest number of tokens that finishes a plan from each slot, which makes every mask budget-aware.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from ...errors import BadRequestError
from .vocab import VocabTable

@dataclass(frozen=True)
class Slot:
    kind: str                        # "lit" | "str" | "num" | "choice" | "sep"
    text: str = ""                   # lit: the literal
    min_len: int = 0                 # str
    max_len: int | None = None       # str
    integer: bool = True             # num
    choices: tuple[str, ...] = ()    # choice: JSON texts
    item: tuple["Slot", ...] = ()    # sep: the plan of one array item
    min_items: int = 1               # sep
    max_items: int | None = None     # sep
    count: int = 0                   # sep: items written so far


def compile_schema(schema: dict, vocab: VocabTable) -> list[Slot]:
    plan: list[Slot] = []
    _emit(schema, schema, plan, "$")
    return merge(plan)


def merge(plan: list[Slot]) -> list[Slot]:
    merged: list[Slot] = []
    for s in plan:  # join neighbouring literals
        if s.kind == "lit" and merged and merged[-1].kind == "lit":
            merged[-1] = Slot("lit", merged[-1].text + s.text)
        else:
            merged.append(s)
    return merged


def _unsupported(where: str, what: str) -> BadRequestError:
    return BadRequestError(f"the local engine's constrained JSON does not support {what} (at {where}); use objects "
                           f"with string / integer / number / boolean / enum properties, nested objects, arrays")


def _resolve(node: dict, root: dict, where: str) -> dict:
    seen = 0
    while "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/") or seen > 20:
            raise _unsupported(where, f"$ref {ref!r}")
        target = root
        for part in ref[2:].split("/"):
            target = target.get(part) if isinstance(target, dict) else None
            if target is None:
                raise BadRequestError(f"schema $ref {ref!r} at {where} points nowhere; fix the schema")
        node, seen = target, seen + 1
    for key in ("anyOf", "oneOf"):
        if key in node:
            branches = [b for b in node[key] if _resolve(b, root, where).get("type") != "null"]
            if len(branches) != 1:
                raise _unsupported(where, f"{key} with several non-null branches")
            return _resolve(branches[0], root, where)
    if isinstance(node.get("type"), list):
        types = [t for t in node["type"] if t != "null"]
        if len(types) != 1:
            raise _unsupported(where, f"type list {node['type']}")
        node = {**node, "type": types[0]}
    return node


def _emit(node: dict, root: dict, plan: list[Slot], where: str) -> None:
    if not isinstance(node, dict):
        raise BadRequestError(f"schema at {where} must be a JSON object, got {node!r}")
    node = _resolve(node, root, where)
    if "const" in node:
        plan.append(Slot("choice", choices=(json.dumps(node["const"]),)))
        return
    if "enum" in node:
        if not node["enum"]:
            raise BadRequestError(f"schema enum at {where} is empty; list at least one value")
        plan.append(Slot("choice", choices=tuple(json.dumps(v) for v in node["enum"])))
        return
    kind = node.get("type", "object" if "properties" in node else None)
    if kind == "object":
        props = node.get("properties") or {}
        if not props:
            raise _unsupported(where, "an object without properties")
        plan.append(Slot("lit", "{"))
        for i, (name, sub) in enumerate(props.items()):
            plan.append(Slot("lit", (", " if i else "") + json.dumps(name) + ": "))
            _emit(sub, root, plan, f"{where}.{name}")
        plan.append(Slot("lit", "}"))
    elif kind == "string":
        if "pattern" in node or "format" in node:
            raise _unsupported(where, "string pattern/format")
        lo, hi = int(node.get("minLength", 0)), node.get("maxLength")
        if hi is not None and int(hi) < lo:
            raise BadRequestError(f"schema at {where}: maxLength {hi} < minLength {lo}")
        plan.append(Slot("lit", '"'))
        plan.append(Slot("str", min_len=lo, max_len=None if hi is None else int(hi)))
    elif kind in ("integer", "number"):
        if any(k in node for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")):
            raise _unsupported(where, "numeric bounds")
        plan.append(Slot("num", integer=kind == "integer"))
    elif kind == "array":
        if not isinstance(node.get("items"), dict) or "prefixItems" in node:
            raise _unsupported(where, "an array without one 'items' schema")
        hi = node.get("maxItems")
        if hi is not None and int(hi) == 0:
            plan.append(Slot("lit", "[]"))
            return
        item: list[Slot] = []
        _emit(node["items"], root, item, f"{where}[]")
        lo = max(1, int(node.get("minItems", 0)))  # an array always gets at least one item
        plan.append(Slot("lit", "["))
        plan.extend(merge(item))
        plan.append(Slot("sep", item=tuple(merge(item)), min_items=lo, max_items=None if hi is None else int(hi),
                         count=1))
    elif kind == "boolean":
        plan.append(Slot("choice", choices=("true", "false")))
    elif kind == "null":
        plan.append(Slot("choice", choices=("null",)))
    else:
        raise _unsupported(where, f"type {kind!r}")



def lit_terminators(plan: list[Slot], i: int, vocab: VocabTable) -> list[tuple[int, int]]:
    """Tokens that spell a prefix of the literal after slot i, with the characters they cover."""
    nxt = plan[i + 1].text if i + 1 < len(plan) and plan[i + 1].kind == "lit" else ""
    out = []
    for k in range(1, len(nxt) + 1):
        tok = vocab.tok2id.get(nxt[:k])
        if tok is not None:
            out.append((tok, k))
    return out


def sep_cost(s: Slot, vocab: VocabTable) -> int:
    missing = max(0, s.min_items - s.count)
    return 1 + missing * (len(vocab.encode(", ")) + plan_rest(list(s.item), vocab)[0])


def plan_rest(plan: list[Slot], vocab: VocabTable) -> list[int]:
    """rest[k]: the cheapest number of tokens that finishes ``plan`` from slot k on."""
    rest = [0] * (len(plan) + 1)
    for k in range(len(plan) - 1, -1, -1):
        s = plan[k]
        if s.kind == "lit":
            if k and plan[k - 1].kind == "num":  # entered through a terminator token that re-splits it
                cost = max(1 + len(vocab.encode(s.text[n:])) for _, n in lit_terminators(plan, k - 1, vocab))
            else:
                cost = len(vocab.encode(s.text))
        elif s.kind == "str":
            cost = s.min_len + 1
        elif s.kind == "num":
            cost = 1
        elif s.kind == "sep":
            cost = sep_cost(s, vocab)
        else:
            cost = min(len(vocab.encode(c)) for c in s.choices)
        rest[k] = rest[k + 1] + cost
    return rest
