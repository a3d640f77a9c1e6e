"""``ParetoEvolution`` (GEPA-style): a per-instance Pareto frontier over validation, reflective mutation,
minibatch acceptance, full-validation promotion, occasional merges.

The pool holds every accepted candidate with its full val scores. An *instance* is one val example (one
(example, objective) pair with several objectives); a candidate is on the frontier when it is best on at least
one instance, and parents are drawn with probability proportional to the number of instances they win. One
step either mutates (one parameter rewritten by the optimizer LLM from the parent's traces and feedback on a
training minibatch; accepted only if the minibatch score rises; then scored on the whole val split) or, with
probability ``merge_prob``, merges two frontier candidates (parameter crossover when they differ in several
parameters, an LLM merge of the one differing text otherwise).
"""
from __future__ import annotations

from ..errors import InvalidVariableError
from .optimizer import register_optimizer
from .prompts_search import MERGE_PROMPT, PROPOSAL_TAG, SEARCH_SYSTEM
from .search_base import SearchOptimizer, counts


@register_optimizer("pareto")
class ParetoEvolution(SearchOptimizer):
    def __init__(self, params, evaluate, *, minibatch_size: int = 3, merge_prob: float = 0.2,
                 perfect_score: float | None = 1.0, **kw):
        counts(self, minibatch_size=minibatch_size)
        if type(merge_prob) not in (int, float) or not 0 <= merge_prob <= 1:
            raise InvalidVariableError(f"ParetoEvolution merge_prob must be a number in [0, 1], got {merge_prob!r}")
        super().__init__(params, evaluate, **kw)
        self.minibatch_size, self.merge_prob, self.perfect_score = minibatch_size, merge_prob, perfect_score
        self.pool: list[str] = []

    # -- frontier ------------------------------------------------------------------------------------------
    def frontier_wins(self) -> dict[str, int]:
        """Candidate -> number of val instances on which it is (one of) the best, pool order. A candidate whose
        won instances are all won by another one too (a subset, or the same set held by an older candidate) is
        dominated and dropped, so parents come from the real frontier."""
        scored = {h: self.store.scored(h, "val") for h in self.pool}
        won: dict[str, set] = {h: set() for h in self.pool}
        for ex_id in self._ids["val"]:
            for obj in self.weights:
                vals = {h: s[ex_id].scores.get(obj, 0.0) for h, s in scored.items() if ex_id in s}
                if not vals:
                    continue
                top = max(vals.values())
                for h, v in vals.items():
                    if v == top:
                        won[h].add((ex_id, obj))
        order = list(self.pool)
        keep = {}
        for i, h in enumerate(order):
            mine = won[h]
            dominated = not mine or any(
                (mine < won[g]) or (mine == won[g] and j < i) for j, g in enumerate(order) if g != h)
            if not dominated:
                keep[h] = len(mine)
        return keep

    def _sample(self, wins: dict[str, int], k: int = 1) -> list[str]:
        cands, weights, out = list(wins), list(wins.values()), []
        for _ in range(min(k, len(cands))):
            i = self.rng.choices(range(len(cands)), weights=weights)[0]
            out.append(cands.pop(i))
            weights.pop(i)
        return out

    # -- step ----------------------------------------------------------------------------------------------
    async def search_step(self) -> None:
        if not self.pool:
            self.pool = [self.seed_hash]
        wins = self.frontier_wins() or {self.pool[0]: 1}
        if len(wins) >= 2 and self.rng.random() < self.merge_prob:
            await self._merge(*self._sample(wins, 2))
        else:
            await self._mutate(self._sample(wins)[0])

    async def _mutate(self, parent: str) -> None:
        name = self.rng.choice(self.names)
        batch = self.minibatch("train", self.minibatch_size)
        evals = await self.evaluate(parent, "train", batch)
        if self.perfect_score is not None and all(e.total(self.weights) >= self.perfect_score for e in evals):
            self._emit("skipped", hash=parent, reason="parent is perfect on the minibatch")
            return
        child = await self.reflect(parent, name, evals, sample=self.step_count)
        if child is None:
            return
        await self._accept(child, [parent], batch, origin="mutation")

    async def _merge(self, a: str, b: str) -> None:
        va, vb = self.store.values(a), self.store.values(b)
        differ = [n for n in self.names if va[n] != vb[n]]
        if not differ:
            return
        child = {n: (va[n] if self.rng.random() < 0.5 else vb[n]) for n in self.names}
        if len(differ) == 1 or child in (va, vb):
            name = differ[self.rng.randrange(len(differ))]
            user = MERGE_PROMPT.format(role=self.role_of(name), a=va[name], b=vb[name])
            text = await self.propose(SEARCH_SYSTEM, user, PROPOSAL_TAG, sample=self.step_count,
                                      current=va[name] + "\n" + vb[name], role=self.role_of(name))
            if text is None:
                return
            child = {**va, name: text}
        await self._accept(child, [a, b], self.minibatch("train", self.minibatch_size), origin="merge")

    async def _accept(self, child: dict, parents: list[str], batch: list[int], origin: str) -> None:
        c = self.admit(child, parents=parents, origin=origin)
        if c is None or c in self.pool:
            return
        parent_evals = await self.evaluate_many(parents, "train", batch)
        bar = max(sum(e.total(self.weights) for e in evs) for evs in parent_evals)
        got = sum(e.total(self.weights) for e in await self.evaluate(c, "train", batch))
        if got <= bar and not (origin == "merge" and got == bar):
            self._emit("rejected", hash=c, reason=f"minibatch score {got:.3g} does not beat the parent's {bar:.3g}")
            return
        self._emit("accepted", hash=c, origin=origin, minibatch_score=got)
        self.pool.append(c)
        await self.promote(c)

    def search_state(self) -> dict:
        return {"pool": list(self.pool)}

    def load_search_state(self, d: dict) -> None:
        self.pool = list(d.get("pool", []))
