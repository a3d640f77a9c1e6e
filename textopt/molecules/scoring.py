"""Scoring SMILES with RDKit (the optional extra ``molecules``: ``pip install 'textopt[molecules]'``).

``score_smiles(s)`` -> ``MoleculeReport``: validity, QED (Bickerton et al.'s drug-likeness, RDKit's
``QED.qed``), Crippen logP, and the synthetic-accessibility score of Ertl & Schuffenhauer (RDKit's
``Contrib/SA_Score``; 1 easy to 10 hard), each with an explanation written for the optimizer. An invalid SMILES
is a report with ``valid=False``, zero objectives and the reason (unclosed ring, bad valence ...), never an
exception. Objectives are in [0, 1], higher is better: ``qed``, ``synth`` = (10 - SA) / 9, ``logp`` (1 inside a
window, falling off linearly over 3 log units outside it).
"""
from __future__ import annotations

import importlib.util
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache

from ..errors import MissingDependencyError
from . import prompts as P

LOGP_WINDOW = (1.0, 3.0)   # a usual oral-drug range; pass another window to logp_objective


def require_rdkit():
    """The ``rdkit.Chem`` module, or ``MissingDependencyError`` naming the extra to install."""
    try:
        from rdkit import Chem
    except ImportError as exc:
        raise MissingDependencyError(
            f"textopt.molecules scores SMILES with RDKit, which is not installed ({exc}); install the extra: "
            f"pip install 'textopt[molecules]' (or pip install rdkit)") from None
    return Chem


@lru_cache(maxsize=1)
def _sascorer():
    from rdkit import RDConfig
    path = os.path.join(RDConfig.RDContribDir, "SA_Score", "sascorer.py")
    if not os.path.isfile(path):
        raise MissingDependencyError(f"this RDKit has no Contrib/SA_Score ({path}); install the PyPI wheel: "
                                     f"pip install 'textopt[molecules]'")
    spec = importlib.util.spec_from_file_location("textopt_sascorer", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@dataclass
class MoleculeReport:
    smiles: str
    valid: bool
    reason: str = ""                  # why it is invalid
    canonical: str = ""               # RDKit's canonical SMILES
    qed: float = 0.0
    logp: float = 0.0
    sa: float = 10.0
    texts: dict = field(default_factory=dict)   # objective -> explanation

    @property
    def synth(self) -> float:
        return (10.0 - self.sa) / 9.0 if self.valid else 0.0

    def logp_score(self, window: tuple[float, float] = LOGP_WINDOW) -> float:
        if not self.valid:
            return 0.0
        lo, hi = window
        dist = max(lo - self.logp, 0.0, self.logp - hi)
        return max(0.0, 1.0 - dist / 3.0)

    def numbers(self) -> dict:
        """Every figure, for traces and logs."""
        return {"valid": self.valid, "qed": round(self.qed, 4), "logp": round(self.logp, 3), "sa": round(self.sa, 3),
                "synth": round(self.synth, 4), "canonical": self.canonical}


def _syntax_reason(smiles: str) -> str:
    """Why RDKit could not even read the string (our own checks; RDKit's log goes to stderr, not to us)."""
    if not smiles.strip():
        return "it is empty"
    if re.search(r"\s", smiles.strip()):
        return "it contains spaces; a SMILES is one word"
    depth = 0
    for ch in smiles:
        depth += ch == "("
        depth -= ch == ")"
        if depth < 0:
            return "a ')' closes a branch that was never opened"
    if depth:
        return f"{depth} branch(es) opened with '(' are never closed"
    if smiles.count("[") != smiles.count("]"):
        return "a bracket atom '[...]' is not closed"
    bare = re.sub(r"\[[^\]]*\]", "", smiles)
    digits = re.findall(r"%\d\d|\d", bare)
    odd = sorted({d for d in digits if digits.count(d) % 2})
    if odd:
        return f"ring-closure label(s) {', '.join(odd)} are opened but never closed"
    return "RDKit cannot parse it (unknown atom symbol or misplaced bond)"


def score_smiles(smiles: str, *, logp_window: tuple[float, float] = LOGP_WINDOW) -> MoleculeReport:
    """Validity, QED, logP and SA of ``smiles`` with explanations; never raises for a bad SMILES."""
    Chem = require_rdkit()
    from rdkit import rdBase
    smiles = str(smiles).strip()
    with rdBase.BlockLogs():
        mol = Chem.MolFromSmiles(smiles, sanitize=False) if smiles and not re.search(r"\s", smiles) else None
        reason = ""
        if mol is None:
            reason = _syntax_reason(smiles)
        else:
            try:
                Chem.SanitizeMol(mol)
            except Exception as exc:  # noqa: BLE001 - RDKit raises several sanitization exception types
                reason = str(exc).strip() or type(exc).__name__
        if not reason and mol.GetNumAtoms() == 0:
            reason = "it has no atoms"
    if reason:
        text = P.INVALID.format(smiles=smiles, reason=reason)
        return MoleculeReport(smiles, False, reason=reason,
                              texts={"qed": text, "synth": text, "logp": text, "valid": text})
    from rdkit.Chem import QED, Crippen
    props = QED.properties(mol)
    rep = MoleculeReport(smiles, True, canonical=Chem.MolToSmiles(mol), qed=float(QED.qed(mol)),
                         logp=float(Crippen.MolLogP(mol)), sa=float(_sascorer().calculateScore(mol)))
    rep.texts = {"qed": _qed_text(rep, props), "synth": _sa_text(rep, mol),
                 "logp": _logp_text(rep, logp_window), "valid": "The SMILES is a valid molecule."}
    return rep


def _qed_text(rep: MoleculeReport, p) -> str:
    issues = [msg for bad, msg in (
        (p.MW > 500, f"molecular weight {p.MW:.0f} above 500"), (p.MW < 150, f"molecular weight {p.MW:.0f} is small"),
        (p.ALOGP > 5, f"logP {p.ALOGP:.1f} above 5"), (p.HBD > 5, f"{p.HBD} H-bond donors (more than 5)"),
        (p.HBA > 10, f"{p.HBA} H-bond acceptors (more than 10)"), (p.PSA > 140, f"polar surface {p.PSA:.0f} above 140"),
        (p.ROTB > 10, f"{p.ROTB} rotatable bonds (more than 10)"), (p.AROM > 3, f"{p.AROM} aromatic rings"),
        (p.ALERTS > 0, f"{p.ALERTS} structural alert(s) (reactive or toxic groups)")) if bad]
    tail = P.QED_ISSUES.format(items="; ".join(issues)) if issues else P.QED_NO_ISSUES
    return P.QED_TEXT.format(qed=rep.qed, mw=p.MW, alogp=p.ALOGP, hbd=p.HBD, hba=p.HBA, psa=p.PSA, rotb=p.ROTB,
                             arom=p.AROM, alerts=p.ALERTS, issues=tail)


def _sa_text(rep: MoleculeReport, mol) -> str:
    Chem = require_rdkit()
    from rdkit.Chem import rdMolDescriptors as D
    ri = mol.GetRingInfo()
    largest = max((len(r) for r in ri.AtomRings()), default=0)
    stereo = len(Chem.FindMolChiralCenters(mol, includeUnassigned=True))
    spiro, bridge = D.CalcNumSpiroAtoms(mol), D.CalcNumBridgeheadAtoms(mol)
    issues = [msg for bad, msg in ((largest > 8, f"a {largest}-membered macrocycle"),
                                   (stereo > 2, f"{stereo} stereocentres"), (spiro > 0, f"{spiro} spiro atom(s)"),
                                   (bridge > 0, f"{bridge} bridgehead atom(s)"),
                                   (mol.GetNumHeavyAtoms() > 40, f"{mol.GetNumHeavyAtoms()} heavy atoms")) if bad]
    tail = P.SA_ISSUES.format(items="; ".join(issues)) if issues else P.SA_NO_ISSUES
    return P.SA_TEXT.format(sa=rep.sa, synth=rep.synth, rings=ri.NumRings(), stereo=stereo, spiro=spiro,
                            bridge=bridge, largest=largest, issues=tail)


def _logp_text(rep: MoleculeReport, window: tuple[float, float]) -> str:
    lo, hi = window
    hint = P.LOGP_HIGH if rep.logp > hi else P.LOGP_LOW if rep.logp < lo else ""
    return P.LOGP_TEXT.format(logp=rep.logp, lo=lo, hi=hi, score=rep.logp_score(window), hint=hint)
