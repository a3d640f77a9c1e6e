"""Token-level constrained decoding for the local engine: regular patterns, and the factory of constraints.

A constraint is a small state machine fed one token at a time by the decode loop:

    mask = c.allowed(remaining)   # bool tensor over the vocabulary; ``remaining`` = tokens left in the budget
    c.advance(token_id)           # after the loop picked a token from the mask
    c.done                        # the output is complete: stop this row

Every mask is *budget-aware*: a token is allowed only if the output can still be completed within the tokens
left, so running out of ``max_tokens`` can never leave a half-written answer. Patterns compile to a DFA
(``interegular``); the tokens allowed from a DFA state are found by walking a character trie of the vocabulary
once per state (cached), and the budget check uses the shortest distance from each state to an accepting one.
The vocabulary table is in ``vocab.py``; JSON schemas live in ``constrain_json.py``.
"""
from __future__ import annotations

import threading
from collections import deque

import torch

from ...checks import expect
from ...errors import BadRequestError
from .vocab import VocabTable

_INF = 1 << 30


class CompiledPattern:
    """A regex as a DFA plus, per state, the tokens it accepts (ids and end states) and the char distance to
    an accepting state."""

    def __init__(self, pattern: str, vocab: VocabTable):
        import interegular

        expect(pattern, str, "Request.pattern", "give a regular expression as a str", error=BadRequestError)
        try:
            fsm = interegular.parse_pattern(pattern).to_fsm()
        except Exception as exc:  # noqa: BLE001 - interegular raises several types
            raise BadRequestError(f"the local engine cannot constrain to pattern {pattern!r}: {exc}; use plain "
                                  f"regular-expression syntax (classes, groups, |, ?, *, +, {{m,n}}), without "
                                  f"look-arounds or back-references") from exc
        self.pattern, self.fsm, self.vocab = pattern, fsm, vocab
        self.finals = set(fsm.finals)
        # a transition on a character no token contains can never be taken: the distances ignore it, so the
        # masks never lead into a state only such a character could leave
        self.usable = {fsm.alphabet[ch] for ch in vocab.chars}
        self.dist = self._distances()
        if self.dist.get(fsm.initial, _INF) >= _INF:
            raise BadRequestError(f"pattern {pattern!r} matches no string the local model's vocabulary can spell "
                                  f"(it matches nothing, or needs a character none of the tokens contain); fix "
                                  f"the pattern")
        self._steps: dict[int, tuple] = {}
        self._lock = threading.Lock()
        self._check_spellable()

    def _check_spellable(self, max_states: int = 256) -> None:
        """Refuse, now, a pattern no sequence of vocabulary tokens can complete (it would otherwise fail in the
        middle of a decode): a best-first search over token steps, nearest accepting state first, bounded to
        ``max_states`` DFA states (a pattern that needs more is let through; the decoder's masks still hold)."""
        seen, frontier = {self.fsm.initial}, [(self.dist[self.fsm.initial], self.fsm.initial)]
        while frontier and len(seen) <= max_states:
            frontier.sort(reverse=True)
            _, state = frontier.pop()
            if state in self.finals:
                return
            _, dists, ends = self.tokens_from(state)
            for d, end in sorted(set(zip(dists.tolist(), ends))):
                if end not in seen:
                    seen.add(end)
                    frontier.append((d, end))
        if not frontier:
            raise BadRequestError(f"the local model's vocabulary cannot spell any string matching pattern "
                                  f"{self.pattern!r} (a character it needs is in none of its tokens); fix the "
                                  f"pattern or drop it for this engine")

    def _distances(self) -> dict[int, int]:
        reverse: dict[int, set[int]] = {}
        for s, trans in self.fsm.map.items():
            for sym, nxt in trans.items():
                if sym in self.usable:
                    reverse.setdefault(nxt, set()).add(s)
        dist = {s: 0 for s in self.finals}
        queue = deque(self.finals)
        while queue:
            s = queue.popleft()
            for p in reverse.get(s, ()):
                if p not in dist:
                    dist[p] = dist[s] + 1
                    queue.append(p)
        return dist

    def step(self, state: int, ch: str) -> int | None:
        nxt = self.fsm.map.get(state, {}).get(self.fsm.alphabet[ch])
        return nxt if nxt is not None and self.dist.get(nxt, _INF) < _INF else None

    def tokens_from(self, state: int) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
        """(token ids, distances of their end states, end states) for every token whose whole text the DFA
        accepts from ``state``."""
        with self._lock:
            hit = self._steps.get(state)
            if hit is not None:
                return hit
            ids: list[int] = []
            ends: list[int] = []
            stack = [(self.vocab.trie, state)]
            while stack:
                node, s = stack.pop()
                for ch, child in node.items():
                    if ch is None:
                        continue
                    nxt = self.step(s, ch)
                    if nxt is None:
                        continue
                    for i in child.get(None, ()):
                        ids.append(i)
                        ends.append(nxt)
                    stack.append((child, nxt))
            hit = (torch.tensor(ids, dtype=torch.long), torch.tensor([self.dist[e] for e in ends], dtype=torch.long),
                   ends)
            self._steps[state] = hit
            return hit


class PatternConstraint:
    """The generated text must fullmatch ``pattern``; EOS is allowed only in an accepting state."""

    def __init__(self, compiled: CompiledPattern, max_tokens: int):
        self.c = compiled
        self.state = compiled.fsm.initial
        self.done = False
        if compiled.dist[self.state] > max_tokens:
            raise BadRequestError(f"max_tokens={max_tokens} is too small for pattern {compiled.pattern!r}: the "
                                  f"shortest match needs {compiled.dist[self.state]} characters")

    def allowed(self, remaining: int) -> torch.Tensor:
        mask = self.c.vocab.empty_mask()
        ids, dists, _ = self.c.tokens_from(self.state)
        if len(ids):
            ok = dists <= remaining - 1
            if not bool(ok.any()) and self.state not in self.c.finals:
                # multi-character tokens can beat the char distance; never leave no choice (a final state has
                # one: EOS — a token that cannot end in time would run out of budget mid-match)
                ok = dists == dists.min()
            mask[ids[ok]] = True
        if self.state in self.c.finals:
            mask[self.c.vocab.eos_id] = True
        elif not len(ids):   # the compile-time search missed this dead end (a very large pattern)
            raise BadRequestError(f"the local model's vocabulary cannot continue pattern {self.c.pattern!r} after "
                                  f"this prefix; simplify the pattern")
        return mask

    def advance(self, token_id: int) -> None:
        if token_id == self.c.vocab.eos_id:
            self.done = True
            return
        ids, _, ends = self.c.tokens_from(self.state)
        pos = (ids == token_id).nonzero()
        if not len(pos):
            raise BadRequestError(f"token {token_id} is not allowed by pattern {self.c.pattern!r}")  # a bug
        self.state = ends[int(pos[0])]
        if self.state in self.c.finals and not len(self.c.tokens_from(self.state)[0]):
            self.done = True


class ConstraintFactory:
    """Builds constraints for requests; compiled patterns and schemas are cached per engine."""

    def __init__(self, tokenizer, vocab_size: int):
        self.vocab = VocabTable(tokenizer, vocab_size)
        self._patterns: dict[str, CompiledPattern] = {}
        self._lock = threading.Lock()

    def for_request(self, request):
        if request.schema is not None and request.pattern is not None:
            raise BadRequestError("a request may carry a schema or a pattern, not both")
        if request.pattern is not None:
            expect(request.pattern, str, "Request.pattern", "give a regular expression as a str",
                   error=BadRequestError)
            with self._lock:
                compiled = self._patterns.get(request.pattern)
                if compiled is None:
                    compiled = self._patterns[request.pattern] = CompiledPattern(request.pattern, self.vocab)
            return PatternConstraint(compiled, request.max_tokens)
        if request.schema is not None:
            from .constrain_json import JsonConstraint, compile_schema
            return JsonConstraint(compile_schema(request.schema, self.vocab), self.vocab, request.max_tokens)
        return None
