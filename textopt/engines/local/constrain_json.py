"""JSON-schema constrained decoding, built field by field.

The schema is compiled to a flat plan: literal segments (braces, keys, colons, commas, opening quotes) that are
forced token by token, and value slots the model fills under a mask:

- ``str``: tokens made of plain characters and whole escapes (``\\"``, ``\\n`` ...); a token with an unescaped
  ``"`` closes it, and may carry the start of what follows (``",`` ``"}`` ``"]``, as the model naturally writes
  them). A bare ``"`` or `` "`` reads like an opening quotation mark, so it closes only when nothing else can.
  The decoded length stays within ``minLength``/``maxLength``.
- ``num``: ``-?(0|[1-9][0-9]*)`` (plus ``.digits`` for ``number``), ended by a token that starts the next literal.
- ``choice``: one of a few JSON texts (``enum``, ``const``, ``boolean``), token by token.

Every property is written, in schema order (optional ones too), so the output always parses and validates.
Masks are budget-aware: each slot may only take tokens that leave enough budget to finish every later slot at its
cheapest, so ``max_tokens`` closes the object instead of truncating it.

Supported: objects (nested), arrays (``items``, ``minItems``/``maxItems``; at least one item), string / integer /
number / boolean, enum/const, ``anyOf``/``type`` lists with null (the non-null branch is used), ``$ref`` into
``$defs``. Anything else raises one ``BadRequestError`` (plan compilation: ``constrain_schema.py``).
"""
from __future__ import annotations

import torch

from ...errors import BadRequestError
from .vocab import VocabTable
from .constrain_schema import Slot, compile_schema, lit_terminators, merge, plan_rest, sep_cost

__all__ = ["JsonConstraint", "compile_schema"]
MAX_DIGITS = 15

class JsonConstraint:
    """Feeds the plan token by token (see the module docstring)."""

    def __init__(self, plan: list[Slot], vocab: VocabTable, max_tokens: int):
        self.plan, self.vocab = list(plan), vocab  # arrays grow the plan as items are added
        self.i = 0              # current slot
        self.lit: list[int] = []  # literal tokens still to force (current "lit" slot)
        self.value = ""         # text written so far in the current value slot
        self.vlen = 0           # decoded characters of a string value so far (an escape counts once)
        self.done = False
        self.text = ""          # everything written (for the caller's checks)
        self._recost()
        if self.rest[0] > max_tokens:
            raise BadRequestError(f"max_tokens={max_tokens} is too small for this JSON schema: the shortest valid "
                                  f"object takes about {self.rest[0]} tokens; raise max_tokens")
        self._enter()

    def _recost(self) -> None:
        """rest[k]: the cheapest number of tokens that finishes the plan from slot k on."""
        self.rest = plan_rest(self.plan, self.vocab)

    def _sep_cost(self, s: Slot) -> int:
        """Cheapest finish of an array at a separator: the missing items, then ']'."""
        return sep_cost(s, self.vocab)

    def _enter(self) -> None:
        """Set up the slot at self.i (literals are tokenized now)."""
        if self.i >= len(self.plan):
            self.done = True
            return
        slot = self.plan[self.i]
        self.value, self.vlen = "", 0
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
            p, hi = self.vlen, slot.max_len if slot.max_len is not None else 1 << 30
            room = remaining - 1 - after  # tokens left for this string after the one we pick now
            cl = self.vocab.content_len
            mask |= (cl >= 1) & (p + cl <= hi) & ((slot.min_len - p - cl).clamp(min=0) + 1 <= room)
            ids, lens, _, cost, weak = self._closers(remaining)
            fits = (p + lens >= slot.min_len) & (p + lens <= hi) & (cost <= remaining - 1)
            strong = fits & ~weak
            mask[ids[strong if bool(strong.any()) else fits]] = True
            if not bool(mask.any()):  # budget exhausted: close the string now
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

    def _closers(self, remaining: int):
        """Tokens that close the string at slot i: content, an unescaped quote, then the start of what follows
        (``",`` ``"}`` ``"]`` ...). Returns tensors (ids, content lengths, follow-up code, cost after, weak); the
        code is the characters of the next literal covered, or for an array separator -1 (']'), 1/2 (', ') or 0.
        Weak closers (a bare quote, or one after a space) read like an opening quotation mark: they are allowed
        only when no other closer fits."""
        nxt = self.plan[self.i + 1] if self.i + 1 < len(self.plan) else Slot("lit", "")
        key = ("lit", nxt.text) if nxt.kind == "lit" else ("sep",)
        table = self.vocab._closers.get(key)
        if table is None:
            rows = []
            for tok, n, tail, weak in self.vocab.quoted:
                if key[0] == "lit" and nxt.text.startswith(tail):
                    rows.append((tok, n, len(tail), weak))
                elif key[0] == "sep" and tail in ("", ",", ", ", "]"):
                    rows.append((tok, n, {"": 0, ",": 1, ", ": 2, "]": -1}[tail], weak))
            table = self.vocab._closers[key] = tuple(torch.tensor(c) for c in zip(*rows))
        ids, lens, codes, weak = table
        costs = {}
        for code in set(codes.tolist()):
            if nxt.kind == "lit":
                costs[code] = len(self.vocab.encode(nxt.text[code:])) + self.rest[min(self.i + 2, len(self.rest) - 1)]
            else:
                costs[code] = self._sep_code_cost(self.i + 1, code)
        cost = torch.tensor([costs[c] for c in codes.tolist()])
        return ids, lens, codes, cost, weak

    def _sep_code_cost(self, i: int, code: int) -> int:
        """Tokens still needed after a separator decision ``code`` taken inside a closing token (1 << 30: not
        allowed by minItems/maxItems)."""
        s, after = self.plan[i], self.rest[i + 1]
        if code == 0:
            return self.rest[i]
        if code < 0:
            return after if s.count >= s.min_items else 1 << 30
        if s.max_items is not None and s.count >= s.max_items:
            return 1 << 30
        nxt = Slot("sep", item=s.item, min_items=s.min_items, max_items=s.max_items, count=s.count + 1)
        return len(self.vocab.encode(", "[code:])) + plan_rest(list(s.item), self.vocab)[0] + \
            self._sep_cost(nxt) + after

    def _terminators(self, remaining: int) -> list[tuple[int, int]]:
        """(token, characters of the next literal it covers) for tokens that may end the number here; before an
        array separator, the separator's own choices."""
        if self.i + 1 < len(self.plan) and self.plan[self.i + 1].kind == "sep":
            return self._sep_tokens(self.i + 1, remaining)
        return lit_terminators(self.plan, self.i, self.vocab)

    def _sep_tokens(self, i: int, remaining: int) -> list[tuple[int, int]]:
        """(token, -1 for ']' or characters of ', ' covered) allowed at the array separator at slot i."""
        s, after = self.plan[i], self.rest[i + 1]
        out = []
        if s.max_items is None or s.count < s.max_items:
            nxt = Slot("sep", item=s.item, min_items=s.min_items, max_items=s.max_items, count=s.count + 1)
            item = plan_rest(list(s.item), self.vocab)[0]
            for k in (1, 2):
                tok = self.vocab.tok2id.get(", "[:k])
                cost = 1 + len(self.vocab.encode(", "[k:])) + item + self._sep_cost(nxt) + after
                if tok is not None and cost <= remaining:
                    out.append((tok, k))
        if s.count >= s.min_items and (1 + after <= remaining or not out):
            out.append((self.vocab.tok2id["]"], -1))
        return out

    def _sep_advance(self, token_id: int) -> None:
        self._sep_apply(dict(self._sep_tokens(self.i, 1 << 30)).get(token_id, -1))

    def _sep_apply(self, k: int) -> None:
        """At the separator: -1 closes the array, 1 or 2 (characters of ', ' written) adds an item."""
        s = self.plan[self.i]
        if k < 0:  # ']': the array is closed
            del self.plan[self.i]
        else:
            nxt = Slot("sep", item=s.item, min_items=s.min_items, max_items=s.max_items, count=s.count + 1)
            head = [Slot("lit", ", "[k:])] if k < 2 else []
            self.plan[self.i:self.i + 1] = merge(head + list(s.item)) + [nxt]
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
            n = int(self.vocab.content_len[token_id])
            if n >= 1:
                self.value += text
                self.vlen += n
            else:  # a closing token: what follows the quote starts the next literal or decides the array
                ids, _, codes, _, _ = self._closers(1 << 30)
                hit = (ids == token_id).nonzero()
                code = int(codes[int(hit[0])]) if len(hit) else 0
                if self.i + 1 < len(self.plan) and self.plan[self.i + 1].kind == "sep" and code:
                    self.i += 1
                    self._enter()
                    self._sep_apply(code)
                else:
                    self._next(lit_consumed=code)
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
