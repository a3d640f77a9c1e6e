"""Molecule optimization: a SMILES string as the parameter, scored with RDKit (pip install 'textopt[molecules]').

    python examples/molecule_optimization.py --engine openai:gpt-4o --steps 4
    python examples/molecule_optimization.py --engine local --steps 2        # the embedded model (weak chemist)

Two optimizers on the same start molecule:
1. TGD through the numeric bridge: QED and synthetic accessibility are text->number bridges on the SMILES, a tensor
   loss combines them, and ``loss.backward()`` gives the SMILES feedback carrying each number, its effect on the
   loss and RDKit's explanation (weight too high, structural alerts, stereocentres ...).
2. ParetoEvolution over the two objectives (QED, ease of synthesis): candidates that no other beats on both
   form the front printed at the end.
An invalid SMILES from the optimizer is scored 0 with the reason as feedback, never a crash; the best valid
molecule seen is kept.
"""
from __future__ import annotations

import argparse
import json

import textopt as tx
from textopt.molecules import SMILES_ROLE, molecule_evaluator, molecule_scores, score_smiles
from textopt.numeric import apply
from textopt.optim import ParetoEvolution

START = "CCCCCCCCCCCCCCCC(=O)OCC(O)CO"     # a greasy monoglyceride: low QED, logP far above drug-like
WEIGHTS = {"qed": 0.6, "synth": 0.4}
CONSTRAINT = "Return one valid SMILES string only: no name, no explanation, no spaces."


def row(smiles: str) -> dict:
    rep = score_smiles(smiles)
    return {"smiles": smiles, "valid": rep.valid, "qed": round(rep.qed, 3), "synth": round(rep.synth, 3),
            "logp": round(rep.logp, 2), **({"invalid": rep.reason} if not rep.valid else {})}


def weighted(r: dict) -> float:
    return sum(w * r[k] for k, w in WEIGHTS.items()) if r["valid"] else 0.0


def run_tgd(engine, *, steps: int = 3, start: str = START) -> dict:
    """TGD on the SMILES with the scores as numeric bridges; returns the trajectory and the best valid molecule."""
    smiles = tx.Variable(start, role=SMILES_ROLE, requires_grad=True)
    optimizer = tx.optim.TGD([smiles], engine=engine, constraints=[CONSTRAINT], max_tokens=200)
    trajectory = [row(smiles.value)]
    for _ in range(steps):
        optimizer.zero_grad()
        scores = molecule_scores(smiles, tuple(WEIGHTS))
        loss = apply(lambda q, s: -(WEIGHTS["qed"] * q + WEIGHTS["synth"] * s), scores["qed"], scores["synth"],
                     role="negative weighted molecule score")
        with tx.backward_engine(engine):
            loss.backward()
        optimizer.step()
        trajectory.append(row(smiles.value))
    best = max((r for r in trajectory if r["valid"]), key=weighted)
    return {"trajectory": trajectory, "best": best}


def run_pareto(engine, *, steps: int = 4, start: str = START, seed: int = 0) -> dict:
    """ParetoEvolution over (QED, ease of synthesis); the objective front with every molecule's figures."""
    smiles = tx.Variable(start, role=SMILES_ROLE, requires_grad=True)
    opt = ParetoEvolution({"smiles": smiles}, molecule_evaluator(tuple(WEIGHTS)), engine=engine,
                          trainset=[{"id": "design"}], valset=[{"id": "check"}], objectives=WEIGHTS,
                          minibatch_size=1, merge_prob=0.0, seed=seed, max_tokens=200, copy_guard=False)
    for _ in range(steps):
        info = opt.step()
        if info.get("stopped"):
            break
    front = [row(opt.store.values(h)["smiles"]) for h in opt.objective_front()]
    return {"front": front, "best": row(smiles.value)}


def run(engine="local", *, steps: int = 3) -> dict:
    engine = tx.get_engine(engine)
    return {"start": row(START), "tgd": run_tgd(engine, steps=steps), "pareto": run_pareto(engine, steps=steps)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--engine", default="local")
    ap.add_argument("--steps", type=int, default=3)
    args = ap.parse_args(argv)
    result = run(args.engine, steps=args.steps)
    print(json.dumps(result, indent=2))
    s, b = result["start"], result["tgd"]["best"]
    print(f"TGD: QED {s['qed']} -> {b['qed']}, ease of synthesis {s['synth']} -> {b['synth']} ({b['smiles']})")
    print(f"Pareto front: {len(result['pareto']['front'])} molecule(s)")


if __name__ == "__main__":
    main()
