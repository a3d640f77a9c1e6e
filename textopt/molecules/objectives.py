"""The molecule scores as objectives: numeric bridges for a TGD graph, and an evaluator for search optimizers.

* ``molecule_scores(smiles)`` -> ``{objective: tensor Variable}``: each score is a text->number bridge
  (``textopt.numeric.MetricScore``) on the SMILES Variable; combine them with ``textopt.numeric.apply`` into a
  tensor loss, and ``loss.backward()`` writes on the SMILES one feedback item per objective carrying the number,
  the direction and size of its effect on the loss (d loss / d score), and the scorer's explanation.
* ``molecule_evaluator()`` -> the search-optimizer evaluator contract (``evaluate(candidate, example) ->
  (scores, feedback, trace)``): per-objective scores (numbers) and explanations (text), the full property table
  in the trace — what ``ParetoEvolution(objectives={"qed": 1, "synth": 1})`` keeps a frontier over.
"""
from __future__ import annotations

from typing import Iterable

from ..errors import InvalidVariableError
from ..variable import Variable
from .scoring import LOGP_WINDOW, MoleculeReport, score_smiles

OBJECTIVES = ("qed", "synth", "logp")
DESCRIPTIONS = {"qed": "drug-likeness (QED)", "synth": "ease of synthesis ((10 - SA score) / 9)",
                "logp": "logP inside the wanted window"}


def objective_value(rep: MoleculeReport, name: str, window: tuple[float, float] = LOGP_WINDOW) -> float:
    if name == "qed":
        return rep.qed if rep.valid else 0.0
    if name == "synth":
        return rep.synth
    if name == "logp":
        return rep.logp_score(window)
    raise InvalidVariableError(f"unknown molecule objective {name!r}; known: {', '.join(OBJECTIVES)}")


def _check(objectives: Iterable[str]) -> tuple[str, ...]:
    names = tuple(objectives)
    bad = [n for n in names if n not in OBJECTIVES]
    if not names or bad:
        raise InvalidVariableError(f"molecule objectives must be some of {', '.join(OBJECTIVES)}, got {names!r}")
    return names


def molecule_scores(smiles: "Variable | str", objectives: Iterable[str] = ("qed", "synth"), *,
                    logp_window: tuple[float, float] = LOGP_WINDOW) -> dict[str, Variable]:
    """One scalar tensor Variable per objective, each a bridge from the SMILES text (see the module docstring)."""
    from ..numeric.to_number import MetricScore
    names = _check(objectives)
    cache: dict[str, MoleculeReport] = {}

    def report(text: str) -> MoleculeReport:
        if text not in cache:
            cache[text] = score_smiles(text, logp_window=logp_window)
        return cache[text]

    out = {}
    for name in names:
        def metric(text: str, _name=name):
            rep = report(text)
            return objective_value(rep, _name, logp_window), rep.texts[_name]
        metric.__name__ = DESCRIPTIONS[name]
        out[name] = MetricScore(metric, name=DESCRIPTIONS[name])(smiles)
    return out


def molecule_evaluator(objectives: Iterable[str] = ("qed", "synth"), *, param: str | None = None,
                       logp_window: tuple[float, float] = LOGP_WINDOW):
    """The search-optimizer evaluator for a SMILES parameter (``param``: its name; None when it is the only one).
    Examples are ignored by the scores (a molecule is scored on its own); pass one-item train and val lists."""
    names = _check(objectives)

    async def evaluate(candidate: dict, example):
        if param is None and len(candidate) != 1:
            raise InvalidVariableError(f"molecule_evaluator(param=...) must name the SMILES parameter among "
                                       f"{sorted(candidate)}")
        rep = score_smiles(candidate[param] if param else next(iter(candidate.values())), logp_window=logp_window)
        scores = {n: objective_value(rep, n, logp_window) for n in names}
        feedback = {n: rep.texts[n] for n in names}
        trace = {"smiles": rep.smiles, **rep.numbers(), **({"invalid": rep.reason} if not rep.valid else {})}
        return scores, feedback, trace

    return evaluate
