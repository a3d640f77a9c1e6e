"""textopt.molecules with real RDKit scores (skipped, with the reason, when RDKit is absent), and the clear error
when it is absent."""
from __future__ import annotations

import sys

import pytest
from hypothesis import given, settings, strategies as st

import textopt as tx
from textopt.engines import ScriptedEngine
from textopt.errors import InvalidVariableError, MissingDependencyError
from textopt.molecules import SMILES_ROLE, molecule_evaluator, molecule_scores, score_smiles
from textopt.numeric import apply
from textopt.runtime import run_sync

try:
    import rdkit  # noqa: F401
    HAVE_RDKIT = True
except ImportError:
    HAVE_RDKIT = False
needs_rdkit = pytest.mark.skipif(not HAVE_RDKIT, reason="RDKit is not installed: pip install 'textopt[molecules]'")

ASPIRIN, IBUPROFEN = "CC(=O)Oc1ccccc1C(=O)O", "CC(C)Cc1ccc(cc1)C(C)C(=O)O"


def test_without_rdkit_the_error_names_the_extra(monkeypatch):
    for name in [m for m in sys.modules if m == "rdkit" or m.startswith("rdkit.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "rdkit", None)     # import rdkit -> ImportError
    with pytest.raises(MissingDependencyError, match=r"pip install 'textopt\[molecules\]'"):
        score_smiles("CCO")
    with pytest.raises(ImportError):                    # also an ImportError for code that catches those
        score_smiles("CCO")


@needs_rdkit
def test_real_scores_of_known_drugs():
    asp, ibu = score_smiles(ASPIRIN), score_smiles(IBUPROFEN)
    assert asp.valid and ibu.valid and asp.canonical == ASPIRIN
    assert asp.qed == pytest.approx(0.550, abs=0.01) and ibu.qed == pytest.approx(0.822, abs=0.01)
    assert asp.logp == pytest.approx(1.31, abs=0.05) and ibu.logp == pytest.approx(3.07, abs=0.05)
    assert 1.0 <= asp.sa < 2.5 and 1.0 <= ibu.sa < 3.0 and 0.8 < asp.synth <= 1.0
    assert "structural alert" in asp.texts["qed"] and "SA score" in asp.texts["synth"]
    assert asp.logp_score() == 1.0 and score_smiles("CCCCCCCCCCCCCCCCCCCC").logp_score() < 0.5
    greasy = score_smiles("CCCCCCCCCCCCCCCC(=O)OCC(O)CO")
    assert "rotatable bonds" in greasy.texts["qed"] and greasy.qed < asp.qed


@needs_rdkit
@pytest.mark.parametrize("smiles, reason", [
    ("C1CC", "ring-closure label(s) 1"), ("CC(C", "never closed"), ("CC)C", "never opened"),
    ("CN(C)(C)(C)C", "valence"), ("", "empty"), ("c1ccccc1 O", "spaces"), ("[Xx]", "unknown atom symbol")])
def test_an_invalid_smiles_is_a_report_with_the_reason(smiles, reason):
    rep = score_smiles(smiles)
    assert not rep.valid and reason in rep.reason and rep.qed == rep.synth == rep.logp_score() == 0.0
    assert "not a valid molecule" in rep.texts["qed"]


@needs_rdkit
@settings(max_examples=150, deadline=None)
@given(st.text(alphabet="CNOSclnos()[]=#123+-@H%0 ", max_size=24))
def test_any_text_scores_without_raising(text):
    rep = score_smiles(text)
    assert rep.valid in (True, False)
    assert 0.0 <= rep.qed <= 1.0 and 0.0 <= rep.synth <= 1.0
    assert rep.valid or rep.reason


@needs_rdkit
def test_scores_reach_tgd_as_numbers_and_explanations_and_an_invalid_proposal_is_feedback():
    smiles = tx.Variable("CCCCCCCCCCCCCCCC(=O)OCC(O)CO", role=SMILES_ROLE, requires_grad=True)
    proposals = iter(["C1CC(N", ASPIRIN])
    eng = ScriptedEngine(lambda req: f"<NEW_VALUE>{next(proposals)}</NEW_VALUE>" if req.role == "optimizer"
                         else "unused")
    opt = tx.optim.TGD([smiles], engine=eng)
    seen = []
    for _ in range(2):
        opt.zero_grad()
        s = molecule_scores(smiles, ("qed", "synth"))
        seen.append({k: float(v.value.detach()) for k, v in s.items()})
        loss = apply(lambda q, a: -(0.6 * q + 0.4 * a), s["qed"], s["synth"])
        loss.backward()
        texts = [g.value for g in smiles.grad]
        assert len(texts) == 2 and "d loss / d score = -0.6" in texts[0] and "d loss / d score = -0.4" in texts[1]
        opt.step()
    assert seen[0]["qed"] == pytest.approx(0.307, abs=0.01) and seen[1] == {"qed": 0.0, "synth": 0.0}
    second = eng.requests[-1].messages[-1].content
    assert "'C1CC(N' is not a valid molecule" in second and "scored by the metric drug-likeness (QED): 0." in second
    assert smiles.value == ASPIRIN                     # the optimizer recovered from its invalid proposal


@needs_rdkit
def test_evaluator_gives_scores_feedback_and_figures():
    ev = molecule_evaluator(("qed", "synth", "logp"))
    scores, feedback, trace = run_sync(ev({"smiles": IBUPROFEN}, {"id": "x"}))
    assert scores["qed"] == pytest.approx(0.822, abs=0.01) and scores["logp"] < 1.0
    assert set(feedback) == {"qed", "synth", "logp"} and "Lower it" in feedback["logp"]
    assert trace["valid"] and trace["canonical"] == "CC(C)Cc1ccc(C(C)C(=O)O)cc1"
    scores, feedback, trace = run_sync(ev({"smiles": "C1CC"}, {"id": "x"}))
    assert scores == {"qed": 0.0, "synth": 0.0, "logp": 0.0} and "never closed" in trace["invalid"]
    with pytest.raises(InvalidVariableError, match="must be some of qed, synth, logp"):
        molecule_evaluator(("potency",))
    with pytest.raises(InvalidVariableError, match="param="):
        run_sync(molecule_evaluator()({"a": "C", "b": "C"}, {}))
