"""Texts of textopt.molecules (named constants; one module): the SMILES parameter's role and the feedback each
score writes. No LLM prompt lives here beyond what reaches the optimizer as feedback."""

SMILES_ROLE = "SMILES string of a drug-like candidate molecule"

INVALID = ("The SMILES {smiles!r} is not a valid molecule: {reason}. Every score is 0 until it parses. Write a "
           "valid SMILES: balanced parentheses, each ring-closure digit used exactly twice, bracket atoms like "
           "[nH] or [O-] closed, and no atom above its usual valence (C 4, N 3, O 2).")

QED_TEXT = ("QED (drug-likeness, 0 to 1, higher is better) is {qed:.3f}. Properties: molecular weight {mw:.0f}, "
            "logP {alogp:.2f}, H-bond donors {hbd}, H-bond acceptors {hba}, polar surface area {psa:.0f}, rotatable "
            "bonds {rotb}, aromatic rings {arom}, structural alerts {alerts}.{issues}")
QED_ISSUES = " What lowers it: {items}."
QED_NO_ISSUES = " No property is far outside the drug-like range."

SA_TEXT = ("Synthetic accessibility (SA score, 1 easy to 10 very hard to make) is {sa:.2f}; as an objective "
           "(1 best) {synth:.3f}. Rings {rings}, stereocentres {stereo}, spiro atoms {spiro}, bridgehead atoms "
           "{bridge}, largest ring {largest}.{issues}")
SA_ISSUES = " What makes it harder to make: {items}."
SA_NO_ISSUES = " Nothing unusual for a synthetic chemist."

LOGP_TEXT = ("logP (Crippen) is {logp:.2f}; the wanted window is {lo:g} to {hi:g}, so the objective is "
             "{score:.3f} (1 inside the window).{hint}")
LOGP_HIGH = " Lower it: add polar groups (OH, NH, C=O, amide), or remove greasy carbons and halogens."
LOGP_LOW = " Raise it: add carbons, an aromatic ring or a halogen, or cap polar groups."
