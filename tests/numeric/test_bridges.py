"""Text <-> number bridges: values, estimators, feedback wording, errors."""
import itertools
import json

import pytest
import torch

import textopt as tx
from textopt import numeric as N
from textopt.engines import ScriptedEngine
from textopt.errors import ExpressionError, InvalidVariableError, ParseError


def test_judge_score_parses_number_and_routes_critique_with_direction():
    eng = ScriptedEngine(json.dumps({"critique": "It never names the unit.", "score": 7}))
    x = tx.Variable("42", role="answer", requires_grad=True)
    s = N.JudgeScore(eng, "Is the answer complete?")(x)
    assert float(s.value.detach()) == pytest.approx(0.7) and s.node.saved["raw"] == 7
    assert eng.requests[0].role == "loss"
    N.apply(lambda v: 1 - v, s).backward(engine=eng)
    text = x.grad[0].value
    assert "It never names the unit." in text and "increases" in text and len(eng.requests) == 1


def test_judge_score_clamps_and_fails_clearly_on_garbage():
    eng = ScriptedEngine(json.dumps({"critique": "ok", "score": 99}))
    assert float(N.JudgeScore(eng, "rate", normalize=False)("t").value) == 10.0
    with pytest.raises(ParseError):
        N.JudgeScore(ScriptedEngine("no json here"), "rate")("t")
    with pytest.raises(InvalidVariableError, match="low < high"):
        N.JudgeScore(eng, "rate", low=5, high=5)


class ScoringEngine(ScriptedEngine):
    async def score(self, messages, continuation):
        self.scored = (list(messages), continuation)
        return [-1.0, -3.0, -0.5]


def test_logprob_score_uses_engine_score_and_names_the_weakest_token():
    eng = ScoringEngine("x")
    prompt = tx.Variable("Translate to French: cat", role="prompt", requires_grad=True)
    system = tx.Variable("You translate.", role="system prompt", requires_grad=True)
    lp = N.LogProbScore(eng)(prompt, "chat", system=system)
    assert float(lp.value.detach()) == pytest.approx(-4.5)
    assert eng.scored == ([{"role": "system", "content": "You translate."},
                           {"role": "user", "content": "Translate to French: cat"}], "chat")
    N.apply(lambda v: -v, lp).backward(engine=eng)
    for var in (prompt, system):
        assert "position 1" in var.grad[0].value and "increases" in var.grad[0].value
    assert float(N.LogProbScore(eng, reduction="mean")("p", "t").value) == pytest.approx(-1.5)


def test_embedding_similarity_is_exact_torch_on_the_vector_side():
    emb = N.HashingEmbedder(32)
    v0 = torch.randn(32, generator=torch.Generator().manual_seed(0))
    v = N.parameter(v0, "target direction")
    x = tx.Variable("the capital of France", role="query text", requires_grad=True)
    sim = N.EmbeddingSimilarity(emb)(x, v)
    N.apply(lambda s: -s, sim).backward(engine=ScriptedEngine("x"))
    r = v0.clone().requires_grad_()
    (-torch.nn.functional.cosine_similarity(emb("the capital of France"), r, dim=0)).backward()
    assert torch.allclose(v.grad, r.grad) and "closer" in x.grad[0].value


def test_embedding_similarity_between_texts_gives_both_feedback():
    emb = N.HashingEmbedder(64)
    a = tx.Variable("red apples", role="draft", requires_grad=True)
    b = tx.Variable("green apples", role="reference", requires_grad=True)
    sim = N.EmbeddingSimilarity(emb)(a, b)
    sim.backward(engine=ScriptedEngine("x"))  # the similarity itself as the loss: make the texts less similar
    assert "less close" in a.grad[0].value and "less close" in b.grad[0].value


def test_plackett_luce_logprob_is_a_distribution():
    logits = torch.tensor([0.3, -1.0, 2.0, 0.1])
    total = sum(torch.exp(N.plackett_luce_logprob(logits, torch.tensor(o), 0.7))
                for o in itertools.permutations(range(4), 2))
    assert float(total) == pytest.approx(1.0, abs=1e-6)
    p = torch.softmax(logits / 0.7, 0)
    first = float(torch.exp(N.plackett_luce_logprob(logits, torch.tensor([2, 0]), 0.7)))
    assert first == pytest.approx(float(p[2] * p[0] / (1 - p[2])), rel=1e-5)


def test_score_function_estimator_is_unbiased_by_enumeration():
    """E_sample[R * d log p(sample)] equals d E[R] for k = 1 (checked exactly, no sampling noise)."""
    logits = torch.tensor([0.5, -0.2, 1.0], requires_grad=True)
    rewards = torch.tensor([1.0, -1.0, 0.0])
    p = torch.softmax(logits, 0)
    (exact,) = torch.autograd.grad((p * rewards).sum(), logits)
    est = torch.zeros(3)
    for i in range(3):
        (g,) = torch.autograd.grad(N.plackett_luce_logprob(logits, torch.tensor([i]), 1.0), logits)
        est += p[i].detach() * rewards[i] * g
    assert torch.allclose(est, exact, atol=1e-6)


def test_sampled_items_reinforce_gradient_and_baseline():
    labels = iter([["helpful", "harmful"], ["helpful", "helpful"]])

    def respond(req):
        if "For each of the" in req.messages[-1].content:
            return json.dumps({"labels": next(labels)})
        return "fb"
    eng = ScriptedEngine(respond)
    items = ["a", "b", "c", "d"]
    logits = N.parameter(torch.tensor([0.0, 1.0, -1.0, 0.5]), "exemplar logits")
    sampler = N.SampledItems(2, tau=0.5, seed=3)
    out = sampler(logits, items)
    again = N.SampledItems(2, tau=0.5, seed=3)(N.parameter(torch.tensor([0.0, 1.0, -1.0, 0.5]), "l"), items)
    assert out.value == again.value  # seeded draws are reproducible
    order = out.node.saved["order"]
    tx.concat([out, tx.Variable("bad output", role="evaluation")]).backward(engine=eng)
    leaf = torch.tensor([0.0, 1.0, -1.0, 0.5], requires_grad=True)
    (g,) = torch.autograd.grad(N.plackett_luce_logprob(leaf, torch.tensor(order), 0.5), leaf)
    assert torch.allclose(logits.grad, -(0.0 - 0.0) * g)  # R = mean(+1, -1) = 0, first baseline 0
    assert sampler.current_baseline() == 0.0
    logits.zero_grad()
    out2 = sampler(logits, items)
    tx.concat([out2, tx.Variable("good", role="evaluation")]).backward(engine=eng)
    (g2,) = torch.autograd.grad(N.plackett_luce_logprob(leaf, torch.tensor(out2.node.saved["order"]), 0.5), leaf)
    assert torch.allclose(logits.grad, -(1.0 - 0.0) * g2)
    assert sampler.current_baseline() == pytest.approx(0.2)


def test_item_bridges_reject_bad_input():
    w = N.parameter(torch.ones(2), "w")
    with pytest.raises(InvalidVariableError, match="one weight per item"):
        N.WeightedItems()(w, ["a", "b", "c"])
    with pytest.raises(InvalidVariableError, match="tensor Variable"):
        N.WeightedItems()(tx.Variable("x"), ["a"])
    with pytest.raises(InvalidVariableError, match="k >= 1"):
        N.SampledItems(0)


@pytest.mark.parametrize("src", ["__import__('os').system('x')", "x.real", "lambda: 1", "[x]", "y", "c8 * x",
                                 "sin", "open('f')", "x if x else 1", "sin(x, x)", "x == 1", "", "a" * 500,
                                 "exp(x=1)"])
def test_restricted_evaluator_rejects(src):
    with pytest.raises(ExpressionError):
        N.compile_expression(src)


def test_restricted_evaluator_computes_with_gradients():
    e = N.compile_expression("y = c0 * sin(c1 * x) + c2 ** 2 - 3 % 2 + -x / 2")
    assert e.constants == (0, 1, 2)
    theta = torch.tensor([2.0, 0.5, 1.5], requires_grad=True)
    x = torch.linspace(0, 1, 5)
    out = e(theta, x=x)
    ref_t = theta.detach().clone().requires_grad_()
    ref = ref_t[0] * torch.sin(ref_t[1] * x) + ref_t[2] ** 2 - 1 + -x / 2
    assert torch.allclose(out, ref)
    out.sum().backward()
    ref.sum().backward()
    assert torch.allclose(theta.grad, ref_t.grad)
    huge = N.compile_expression("9 ** 9 ** 9 + x")(torch.zeros(1), x=x)
    assert torch.isinf(huge).all()
    assert N.compile_expression("3")(torch.zeros(1), x=x).shape == x.shape
    with pytest.raises(ExpressionError, match="c2"):
        N.compile_expression("c2 * x")(torch.zeros(2), x=x)


def test_hashing_embedder_is_deterministic_and_normalised():
    emb = N.HashingEmbedder(48)
    a, b = emb("Paris is the capital"), emb("Paris is the capital")
    assert torch.equal(a, b) and float(a.norm()) == pytest.approx(1.0)
    assert float(a @ emb("capital Paris")) > float(a @ emb("bananas grow"))


def test_sampled_items_baseline_ignores_backward_completion_order():
    """Two draws, backward in reverse order: the baseline folds rewards in draw order and each gradient uses the
    baseline as of its own forward."""
    def respond(req):
        content = req.messages[-1].content
        if "For each of the" in content:
            return json.dumps({"labels": ["helpful"] if "[1] a" in content else ["harmful"]})
        return "fb"
    eng = ScriptedEngine(respond)
    results = []
    for order in ((0, 1), (1, 0)):
        sampler = N.SampledItems(1, tau=1.0, seed=0)
        outs = []
        for items in (["a", "b"], ["c", "d"]):
            logits = N.parameter(torch.tensor([5.0, -5.0]), "logits")
            outs.append((logits, sampler(logits, items)))
        for i in order:
            tx.concat([outs[i][1], tx.Variable("eval", role="evaluation")]).backward(engine=eng)
        results.append((sampler.current_baseline(), [o[0].grad.clone() for o in outs]))
    assert results[0][0] == results[1][0] == pytest.approx(0.8 * 1.0 + 0.2 * -1.0)
    assert all(torch.equal(a, b) for a, b in zip(results[0][1], results[1][1]))
