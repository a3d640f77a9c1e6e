"""``OPRO``: optimization by prompting — a meta-prompt of the best earlier values with their scores.

One step optimizes one parameter (round-robin): the meta-prompt lists the ``top_n`` best (value, score) pairs of
that parameter sorted worst to best, plus a few task examples; the optimizer LLM proposes ``proposals`` new
values (sampled); each is scored on a fixed training subset (``score_size`` examples drawn once) and kept in the
history. Proposals that match or beat the leader on that subset are scored on the whole val split and promoted
only if they beat the best so far there.
"""
from __future__ import annotations

import asyncio

from .optimizer import register_optimizer
from .prompts_search import (OPRO_ENTRY, OPRO_PROMPT, OPRO_SYSTEM, PROPOSAL_TAG, render_examples,
                             render_objectives)
from .search_base import SearchOptimizer, counts


@register_optimizer("opro")
class OPRO(SearchOptimizer):
    def __init__(self, params, evaluate, *, proposals: int = 4, top_n: int = 8, score_size: int = 6,
                 n_examples: int = 2, **kw):
        counts(self, proposals=proposals, top_n=top_n, score_size=score_size)
        counts(self, n_examples=n_examples, lo=0)
        super().__init__(params, evaluate, **kw)
        self.proposals, self.top_n, self.score_size, self.n_examples = proposals, top_n, score_size, n_examples
        self.score_set: list[int] = []
        self.history: list[list] = []  # [hash, score on the score set], in the order they were scored

    async def _score(self, h: str) -> float:
        return self.mean(await self.evaluate(h, "train", self.score_set))

    def _ranked(self) -> list[list]:
        return sorted(self.history, key=lambda e: (-e[1], self.store.order(e[0])))

    async def search_step(self) -> None:
        if not self.score_set:
            self.score_set = self.minibatch("train", self.score_size)
        if not self.history:
            self.history.append([self.seed_hash, await self._score(self.seed_hash)])
        name = self.names[self.step_count % len(self.names)]
        best = self._ranked()
        lead = best[0][0]
        shown, seen = [], set()
        for h, s in best:
            v = self.store.values(h)[name]
            if v not in seen:
                seen.add(v)
                shown.append(OPRO_ENTRY.format(score=s, value=v))
            if len(shown) == self.top_n:
                break
        evals = [e for e in self.store.scored(lead, "train").values()][: self.n_examples]
        user = OPRO_PROMPT.format(role=self.role_of(name), history="\n".join(reversed(shown)),
                                  examples=render_examples(evals, self.weights),
                                  objectives_short=render_objectives(self.weights))
        base = self.step_count * self.proposals
        current = self.store.values(lead)[name]
        texts = await asyncio.gather(*(self.propose(OPRO_SYSTEM, user, PROPOSAL_TAG, sample=base + k, current=current,
                                                    role=self.role_of(name))
                                       for k in range(self.proposals)))
        known = {e[0] for e in self.history}
        fresh = []
        for t in texts:
            if t is None:
                continue
            h = self.admit({**self.store.values(lead), name: t}, parents=[lead], origin="opro")
            if h is not None and h not in known:
                known.add(h)
                fresh.append(h)
        lead_score = best[0][1]
        scores = [self.mean(evs) for evs in await self.evaluate_many(fresh, "train", self.score_set)]
        self.history.extend([h, s] for h, s in zip(fresh, scores))
        # the score set is small: a proposal that ties the leader there may still be better on val
        for h in [best[0][0]] + [h for h, s in zip(fresh, scores) if s >= lead_score]:
            await self.promote(h)

    def search_state(self) -> dict:
        return {"score_set": list(self.score_set), "history": [list(e) for e in self.history]}

    def load_search_state(self, d: dict) -> None:
        self.score_set = list(d.get("score_set", []))
        self.history = [list(e) for e in d.get("history", [])]
