"""LogProbScore on the real embedded model (SmolLM2-135M): engine.score -> a numeric Variable -> text feedback."""
import importlib.util

import pytest

import textopt as tx
from textopt import numeric as N

pytestmark = pytest.mark.local

HAS_LOCAL = importlib.util.find_spec("textopt.engines.local") is not None


@pytest.mark.skipif(not HAS_LOCAL, reason="the local engine is not in this tree")
def test_logprob_score_on_the_local_model_ranks_and_gives_feedback():
    engine = tx.get_engine("local")
    prompt = tx.Variable("What is 2 + 2? Reply with just the number.", role="question prompt", requires_grad=True)
    scorer = N.LogProbScore(engine)
    good = scorer(prompt, "4")
    bad = scorer("What is 2 + 2? Reply with just the number.", "elephant")
    assert float(good.value.detach()) < 0 and float(good.value.detach()) > float(bad.value.detach())
    loss = N.apply(lambda lp: -lp, good)          # maximise the log-probability of the target
    loss.backward(engine=tx.engines.ScriptedEngine("unused"))
    text = prompt.grad[0].value
    assert "<TARGET>4</TARGET>" in text and "increases" in text
