"""``BeamSearch`` (ProTeGi-style): reflective edits from minibatch feedback, bandit selection, top-b beam.

One step: for each beam candidate, evaluate it on a training minibatch and ask the optimizer LLM for ``edits``
rewrites of one parameter from the traces and feedback of the examples it got wrong (all of them when it did
equally well everywhere); then rank beam + children with a bandit on validation
minibatches — successive halving (``selection="halving"``) or UCB (``selection="ucb"``) — and keep the top
``beam_width``. The leader is scored on the whole val split and becomes the parameters' value only if it beats
the best so far.
"""
from __future__ import annotations

import asyncio
import math

from ..errors import InvalidVariableError
from .optimizer import register_optimizer
from .search_base import SearchOptimizer, counts


@register_optimizer("beam")
class BeamSearch(SearchOptimizer):
    def __init__(self, params, evaluate, *, beam_width: int = 2, edits: int = 2, minibatch_size: int = 4,
                 selection: str = "halving", val_minibatch: int = 4, ucb_pulls: int | None = None,
                 ucb_c: float = 0.5, **kw):
        if selection not in ("halving", "ucb"):
            raise InvalidVariableError(f"selection must be 'halving' or 'ucb', got {selection!r}")
        counts(self, beam_width=beam_width, edits=edits, minibatch_size=minibatch_size, val_minibatch=val_minibatch)
        counts(self, ucb_pulls=ucb_pulls, allow_none=True)
        super().__init__(params, evaluate, **kw)
        self.beam_width, self.edits, self.minibatch_size = beam_width, edits, minibatch_size
        self.selection, self.val_minibatch = selection, val_minibatch
        self.ucb_pulls, self.ucb_c = ucb_pulls, ucb_c
        self.beam: list[str] = []

    async def search_step(self) -> None:
        if not self.beam:
            self.beam = [self.seed_hash]
        pool = list(self.beam)
        for b, h in enumerate(self.beam):
            evals = await self.evaluate(h, "train", self.minibatch("train", self.minibatch_size))
            top = max(e.total(self.weights) for e in evals)
            errors = [e for e in evals if e.total(self.weights) < top] or evals   # ProTeGi: edit from the errors
            names = [self.rng.choice(self.names) for _ in range(self.edits)]
            base = (self.step_count * self.beam_width + b) * self.edits
            children = await asyncio.gather(*(self.reflect(h, n, errors, sample=base + k)
                                              for k, n in enumerate(names)))
            for child in children:
                if child is not None:
                    c = self.admit(child, parents=[h], origin="edit")
                    if c is not None and c not in pool:
                        pool.append(c)
        ranked = await (self._halving(pool) if self.selection == "halving" else self._ucb(pool))
        self.beam = ranked[: self.beam_width]
        await self.promote(self.beam[0])

    def _rank(self, hashes: list[str]) -> list[str]:
        order = {h: i for i, h in enumerate(self.store.candidates)}
        return sorted(hashes, key=lambda h: (-self.known_score(h, "val"), order[h]))

    async def _halving(self, pool: list[str]) -> list[str]:
        alive = list(pool)
        while True:
            await self.evaluate_many(alive, "val", self.minibatch("val", self.val_minibatch))
            alive = self._rank(alive)
            if len(alive) <= self.beam_width:
                return alive
            alive = alive[: max(self.beam_width, math.ceil(len(alive) / 2))]

    async def _ucb(self, pool: list[str]) -> list[str]:
        pulls = self.ucb_pulls if self.ucb_pulls is not None else 2 * len(pool)
        counts = {h: len(self.store.scored(h, "val")) for h in pool}
        for t in range(1, pulls + 1):
            def ucb(h):
                n = counts[h]
                return math.inf if n == 0 else self.known_score(h, "val") + self.ucb_c * math.sqrt(math.log(t + 1) / n)
            h = max(pool, key=lambda c: (ucb(c), -pool.index(c)))
            await self.evaluate(h, "val", self.minibatch("val", self.val_minibatch))
            counts[h] = len(self.store.scored(h, "val"))
        return self._rank(pool)

    def search_state(self) -> dict:
        return {"beam": list(self.beam)}

    def load_search_state(self, d: dict) -> None:
        self.beam = list(d.get("beam", []))
