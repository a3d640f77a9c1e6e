"""JSON-schema constrained decoding, built field by field.

The schema is compiled to a flat plan: literal segments (braces, keys, colons, commas, opening quotes) that are
forced token by token, and value slots the model fills under a mask:

- ``str``: tokens made of plain characters and whole escapes (``\\"``, ``\\n`` ...), then a token ending in an
  unescaped ``"`` closes it; the decoded length stays within ``minLength``/``maxLength``.
- ``num``: ``-?(0|[1-9][0-9]*)`` (plus ``.digits`` for ``number``), ended by a token that starts the next literal.
- ``choice``: one of a few JSON texts (``enum``, ``const``, ``boolean``), token by token.

Every property is written, in schema order (optional ones too), so the output always parses and validates.
Masks are budget-aware: each slot may only take tokens that leave enough budget to finish every later slot at its
cheapest, so ``max_tokens`` closes the object instead of truncating it.

Supported: objects (nested), string/integer/number/boolean, enum/const, ``anyOf``/``type`` lists with null (the
non-null branch is used), ``$ref`` into ``$defs``. Anything else raises one ``BadRequestError``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import torch

from ..errors import BadRequestError
from .constrain import VocabTable

MAX_DIGITS = 15


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
    return _merge(plan)


def _merge(plan: list[Slot]) -> list[Slot]:
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
        plan.extend(_merge(item))
        plan.append(Slot("sep", item=tuple(_merge(item)), min_items=lo, max_items=None if hi is None else int(hi),
                         count=1))
    elif kind == "boolean":
        plan.append(Slot("choice", choices=("true", "false")))
    elif kind == "null":
        plan.append(Slot("choice", choices=("null",)))
    else:
        raise _unsupported(where, f"type {kind!r}")


class JsonConstraint:
    """Feeds the plan token by token (see the module docstring)."""

    def __init__(self, plan: list[Slot], vocab: VocabTable, max_tokens: int):
        self.plan, self.vocab = list(plan), vocab  # arrays grow the plan as items are added
        self.i = 0              # current slot
        self.lit: list[int] = []  # literal tokens still to force (current "lit" slot)
        self.value = ""         # text written so far in the current value slot
        self.done = False
        self.text = ""          # everything written (for the caller's checks)
        self._recost()
        if self.rest[0] > max_tokens:
            raise BadRequestError(f"max_tokens={max_tokens} is too small for this JSON schema: the shortest valid "
                                  f"object takes about {self.rest[0]} tokens; raise max_tokens")
        self._enter()

    def _recost(self) -> None:
        """rest[k]: the cheapest number of tokens that finishes the plan from slot k on."""
        self.rest = _plan_rest(self.plan, self.vocab)

    def _sep_cost(self, s: Slot) -> int:
        """Cheapest finish of an array at a separator: the missing items, then ']'."""
        return _sep_cost(s, self.vocab)

    def _enter(self) -> None:
        """Set up the slot at self.i (literals are tokenized now)."""
        if self.i >= len(self.plan):
            self.done = True
            return
        slot = self.plan[self.i]
        self.value = ""
        if slot.kind == "lit":
            self.lit = list(self.vocab.encode(slot.text))
            if not self.lit:
                self._next()

    def _next(self, lit_consumed: int = 0) -> None:
        self.i += 1
        self._enter()
        if lit_consumed and not self.done:
            rest_text = self.plan[self.i].text[lit_consumed:]
            self.lit = list(self.vocab.encode(rest_text))
            if not self.lit:
                self._next()

    def leading_literal(self) -> list[int]:
        """The tokens forced before the first value (the caller may put them in the prompt and advance)."""
        return list(self.lit) if self.i == 0 and self.plan[0].kind == "lit" else []

    # -- the decode-loop interface -----------------------------------------------------------------------------
    def allowed(self, remaining: int) -> torch.Tensor:
        mask = self.vocab.empty_mask()
        slot = self.plan[self.i]
        after = self.rest[self.i + 1]
        if slot.kind == "lit":
            mask[self.lit[0]] = True
        elif slot.kind == "str":
            p, hi = len(self.value), slot.max_len if slot.max_len is not None else 1 << 30
            room = remaining - 1 - after  # tokens left for this string after the one we pick now
            cl, lc = self.vocab.content_len, self.vocab.close_len
            ok_content = (cl >= 1) & (p + cl <= hi) & ((slot.min_len - p - cl).clamp(min=0) + 1 <= room)
            ok_close = (lc >= 0) & (p + lc >= slot.min_len) & (p + lc <= hi) & (after <= remaining - 1)
            mask |= ok_content | ok_close
            if not bool(mask.any()):  # budget exhausted: close the string now if the length rules allow it
                mask[self.vocab.tok2id['"']] = True
        elif slot.kind == "num":
            for tok in self._num_tokens(slot, remaining, after):
                mask[tok] = True
        elif slot.kind == "sep":
            for tok, _ in self._sep_tokens(self.i, remaining):
                mask[tok] = True
        else:
            for tok in self._choice_tokens(slot, remaining, after):
                mask[tok] = True
        return mask

    def _terminators(self, remaining: int) -> list[tuple[int, int]]:
        """(token, characters of the next literal it covers) for tokens that may end the number here; before an
        array separator, the separator's own choices."""
        if self.i + 1 < len(self.plan) and self.plan[self.i + 1].kind == "sep":
            return self._sep_tokens(self.i + 1, remaining)
        return _lit_terminators(self.plan, self.i, self.vocab)

    def _sep_tokens(self, i: int, remaining: int) -> list[tuple[int, int]]:
        """(token, -1 for ']' or characters of ', ' covered) allowed at the array separator at slot i."""
        s, after = self.plan[i], self.rest[i + 1]
        out = []
        if s.max_items is None or s.count < s.max_items:
            nxt = Slot("sep", item=s.item, min_items=s.min_items, max_items=s.max_items, count=s.count + 1)
            item = _plan_rest(list(s.item), self.vocab)[0]
            for k in (1, 2):
                tok = self.vocab.tok2id.get(", "[:k])
                cost = 1 + len(self.vocab.encode(", "[k:])) + item + self._sep_cost(nxt) + after
                if tok is not None and cost <= remaining:
                    out.append((tok, k))
        if s.count >= s.min_items and (1 + after <= remaining or not out):
            out.append((self.vocab.tok2id["]"], -1))
        return out

    def _sep_advance(self, token_id: int) -> None:
        s = self.plan[self.i]
        k = dict(self._sep_tokens(self.i, 1 << 30)).get(token_id)
        if k is None or k < 0:  # ']': the array is closed
            del self.plan[self.i]
        else:
            nxt = Slot("sep", item=s.item, min_items=s.min_items, max_items=s.max_items, count=s.count + 1)
            head = [Slot("lit", ", "[k:])] if k < 2 else []
            self.plan[self.i:self.i + 1] = _merge(head + list(s.item)) + [nxt]
        self._recost()
        self._enter()

    def _num_tokens(self, slot: Slot, remaining: int, after: int) -> list[int]:
        v = self.value
        digits = [self.vocab.tok2id[d] for d in "0123456789"]
        ends_digit = bool(v) and v[-1].isdigit()
        int_part = v.lstrip("-").split(".")[0]
        out: list[int] = []
        can_grow = remaining - 1 >= after and len(v.replace("-", "").replace(".", "")) < MAX_DIGITS
        if can_grow and (not ends_digit or int_part != "0" or "." in v):
            out += digits
        if v == "" and remaining - 2 >= after:
            out.append(self.vocab.tok2id["-"])
        if not slot.integer and ends_digit and "." not in v and remaining - 2 >= after:
            out.append(self.vocab.tok2id["."])
        if ends_digit:
            out += [tok for tok, _ in self._terminators(remaining)]
        if not out:  # nothing fits: write the cheapest number
            out = [self.vocab.tok2id["0"]]
        return out

    def _choice_tokens(self, slot: Slot, remaining: int, after: int) -> list[int]:
        q, out = self.value, []
        for c in slot.choices:
            if not c.startswith(q) or len(c) == len(q):
                continue
            for k in range(len(q) + 1, len(c) + 1):
                tok = self.vocab.tok2id.get(c[len(q):k])
                if tok is not None and 1 + len(self.vocab.encode(c[k:])) + after <= remaining:
                    out.append(tok)
        if not out:  # budget exhausted: the tokenizer's own spelling of the shortest remaining choice
            rest = min((c for c in slot.choices if c.startswith(q) and len(c) > len(q)), key=len)
            out = [self.vocab.encode(rest[len(q):])[0]]
        return out

    def advance(self, token_id: int) -> None:
        text = self.vocab.texts[token_id] or ""
        slot = self.plan[self.i]
        self.text += text
        if slot.kind == "lit":
            self.lit.pop(0)
            if not self.lit:
                self._next()
        elif slot.kind == "str":
            if text.endswith('"') and int(self.vocab.close_len[token_id]) >= 0:
                self._next()
            else:
                self.value += text
        elif slot.kind == "num":
            term = dict(self._terminators(1 << 30)) if self.value and self.value[-1].isdigit() else {}
            if token_id in term and self.plan[self.i + 1].kind == "sep":
                self.i += 1
                self._enter()
                self._sep_advance(token_id)
            elif token_id in term:
                self._next(lit_consumed=term[token_id])
            else:
                self.value += text
        elif slot.kind == "sep":
            self._sep_advance(token_id)
        else:
            self.value += text
            if self.value in slot.choices and not any(c.startswith(self.value) and c != self.value
                                                      for c in slot.choices):
                self._next()


def _lit_terminators(plan: list[Slot], i: int, vocab: VocabTable) -> list[tuple[int, int]]:
    """Tokens that spell a prefix of the literal after slot i, with the characters they cover."""
    nxt = plan[i + 1].text if i + 1 < len(plan) and plan[i + 1].kind == "lit" else ""
    out = []
    for k in range(1, len(nxt) + 1):
        tok = vocab.tok2id.get(nxt[:k])
        if tok is not None:
            out.append((tok, k))
    return out


def _sep_cost(s: Slot, vocab: VocabTable) -> int:
    missing = max(0, s.min_items - s.count)
    return 1 + missing * (len(vocab.encode(", ")) + _plan_rest(list(s.item), vocab)[0])


def _plan_rest(plan: list[Slot], vocab: VocabTable) -> list[int]:
    """rest[k]: the cheapest number of tokens that finishes ``plan`` from slot k on."""
    rest = [0] * (len(plan) + 1)
    for k in range(len(plan) - 1, -1, -1):
        s = plan[k]
        if s.kind == "lit":
            if k and plan[k - 1].kind == "num":  # entered through a terminator token that re-splits it
                cost = max(1 + len(vocab.encode(s.text[n:])) for _, n in _lit_terminators(plan, k - 1, vocab))
            else:
                cost = len(vocab.encode(s.text))
        elif s.kind == "str":
            cost = s.min_len + 1
        elif s.kind == "num":
            cost = 1
        elif s.kind == "sep":
            cost = _sep_cost(s, vocab)
        else:
            cost = min(len(vocab.encode(c)) for c in s.choices)
        rest[k] = rest[k + 1] + cost
    return rest
