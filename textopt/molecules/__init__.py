"""textopt.molecules: a SMILES string as the parameter, scored with RDKit (extra: ``pip install
'textopt[molecules]'``). Importing works without RDKit; scoring raises ``MissingDependencyError`` naming the extra.

    smiles = tx.Variable("CCO", role=SMILES_ROLE, requires_grad=True)
    s = molecule_scores(smiles, ("qed", "synth"))                  # tensor Variables (numeric bridges)
    loss = tx.numeric.apply(lambda q, a: -(q + a) / 2, s["qed"], s["synth"])
    loss.backward(); tx.optim.TGD([smiles], engine=...).step()     # feedback with numbers and explanations

    ParetoEvolution({"smiles": smiles}, molecule_evaluator(), objectives={"qed": 1.0, "synth": 1.0}, ...)
"""
from .objectives import DESCRIPTIONS, OBJECTIVES, molecule_evaluator, molecule_scores, objective_value
from .prompts import SMILES_ROLE
from .scoring import LOGP_WINDOW, MoleculeReport, require_rdkit, score_smiles

__all__ = ["score_smiles", "MoleculeReport", "require_rdkit", "molecule_scores", "molecule_evaluator",
           "objective_value", "OBJECTIVES", "DESCRIPTIONS", "SMILES_ROLE", "LOGP_WINDOW"]
