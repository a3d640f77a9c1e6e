"""One ``loss.backward()`` over text and tensor Variables: torch grads as plain autograd, text grads as scripted."""
import json

import pytest
import torch

import textopt as tx
from textopt import numeric as N
from textopt.engines import ScriptedEngine
from textopt.errors import GraphError
from textopt.function import Function
from textopt.numeric import prompts as P
from textopt.prompts import BACKWARD_SYSTEM


def responder(labels=("helpful", "harmful", "neutral")):
    def answer(req):
        user = req.messages[-1].content
        if "For each of the" in user:
            n = int(user.split("For each of the ")[1].split(" ")[0])
            return json.dumps({"labels": list(labels)[:n]})
        if req.system == BACKWARD_SYSTEM:
            return "FB<" + user[-60:] + ">"
        if req.role == "loss":
            return "The answer misses the capital."
        return "answer to: " + user[:30]
    return answer


def test_numeric_graph_grads_equal_plain_torch():
    torch.manual_seed(0)
    a0, b0 = torch.randn(5), torch.randn(5)
    a = N.parameter(a0, "a")
    b = N.parameter(b0, "b")
    h = N.apply(lambda x, y: torch.tanh(x * y), a, b)
    loss = N.apply(lambda h, x: (h ** 2).sum() + x.sum(), h, a)
    loss.backward()
    ra, rb = a0.clone().requires_grad_(), b0.clone().requires_grad_()
    ((torch.tanh(ra * rb) ** 2).sum() + ra.sum()).backward()
    assert torch.equal(a.grad, ra.grad) and torch.equal(b.grad, rb.grad)


def test_text_to_number_one_backward_torch_and_text_grads():
    eng = ScriptedEngine(responder())
    prompt = tx.Variable("Answer briefly.", role="system prompt", requires_grad=True)
    answer = tx.nn.LLMCall(eng, prompt)("What is the capital of France?").retain_grad()
    score = N.MetricScore(lambda s: (0.25, "too short"), name="quality")(answer)
    w0 = torch.tensor([0.5, -1.5])
    w = N.parameter(w0, "weights")
    loss = N.apply(lambda s, w: ((w * s).sum() - 1.0) ** 2 + (w ** 2).sum(), score, w)
    loss.backward(engine=eng)
    # torch side: exactly plain autograd of the same computation with the score as a constant
    rw = w0.clone().requires_grad_()
    (((rw * 0.25).sum() - 1.0) ** 2 + (rw ** 2).sum()).backward()
    assert torch.equal(w.grad, rw.grad)
    # d loss / d score = 2 * (sum(w) * s - 1) * sum(w) = 2 * (-0.25 - 1) * -1 = 2.5 > 0 -> "decrease"
    expected = P.SCORE_FEEDBACK.format(role=answer.role, what="the metric quality", value="0.25", way="decrease",
                                       grad=2.5, explanation=P.SCORE_EXPLANATION.format(text="too short"))
    assert [f.value for f in answer.grad] == [expected]
    assert len(prompt.grad) == 1
    backward_req = [r for r in eng.requests if r.role == "backward"]
    assert len(backward_req) == 1 and expected in backward_req[0].messages[-1].content
    assert prompt.grad[0].value == "FB<" + backward_req[0].messages[-1].content[-60:] + ">"


def test_score_as_loss_directly_and_increase_direction():
    eng = ScriptedEngine(responder())
    x = tx.Variable("draft", role="draft answer", requires_grad=True)
    score = N.MetricScore(lambda s: 0.1, name="m")(x)
    neg = N.apply(lambda s: -s, score)
    neg.backward(engine=eng)
    assert "increases" in x.grad[0].value and "-1" in x.grad[0].value
    assert eng.requests == []  # sign-and-magnitude feedback needs no LLM call


def test_number_to_text_items_gradient_matches_manual_autograd():
    eng = ScriptedEngine(responder(("helpful", "harmful", "neutral")))
    s0 = torch.tensor([2.0, 1.0, 0.5])
    scores = N.parameter(s0, "retrieval scores")
    tau = N.parameter(torch.tensor(0.7), "temperature")
    weights = N.apply(lambda s, t: torch.softmax(s / t, 0), scores, tau)
    ctx_text = N.WeightedItems(strength=0.5)(weights, ["Paris is in France.", "Cats purr.", "Rome is old."])
    ctx_text.retain_grad()
    prompt = tx.Variable("Use the passages.", role="answer prompt", requires_grad=True)
    answer = tx.nn.LLMCall(eng, prompt)(tx.concat([ctx_text, tx.Variable("Capital of France?", role="question")]))
    loss = tx.nn.TextLoss("Judge the answer.", eng)(answer)
    loss.backward(engine=eng)
    rs, rt = s0.clone().requires_grad_(), torch.tensor(0.7, requires_grad=True)
    torch.softmax(rs / rt, 0).backward(-0.5 * torch.tensor([1.0, -1.0, 0.0]))
    assert torch.equal(scores.grad, rs.grad) and torch.equal(tau.grad, rt.grad)
    assert scores.grad[0] < 0  # gradient descent raises the helpful passage's score
    assert len(prompt.grad) == 1 and len(ctx_text.grad) == 1
    judge_calls = [r for r in eng.requests if "For each of the" in r.messages[-1].content]
    assert len(judge_calls) == 1 and "Cats purr." in judge_calls[0].messages[-1].content


def test_tensor_loss_and_bridge_gradients_sum_in_one_backward():
    eng = ScriptedEngine(responder(("harmful", "helpful")))
    s0 = torch.tensor([0.3, -0.2])
    scores = N.parameter(s0, "scores")
    weights = N.apply(lambda s: torch.softmax(s, 0), scores)
    text = N.WeightedItems()(weights, ["a", "b"])
    answer = tx.nn.LLMCall(eng, tx.Variable("sys", role="system prompt"))(text)
    quality = N.MetricScore(lambda s: 0.5, name="q")(answer)
    loss = N.apply(lambda q, w: (1 - q) + (w ** 2).sum(), quality, weights)
    loss.backward(engine=eng)
    rs = s0.clone().requires_grad_()
    rw = torch.softmax(rs, 0)
    torch.autograd.backward([(1 - torch.tensor(0.5)) + (rw ** 2).sum(), rw], [torch.tensor(1.0),
                                                                               torch.tensor([1.0, -1.0])])
    assert torch.allclose(scores.grad, rs.grad, atol=0, rtol=1e-6)


def test_hybrid_pass_is_deterministic_across_latencies():
    grads = []
    for seed in range(3):
        eng = ScriptedEngine(responder(("helpful", "harmful")), latency=(0.0, 0.01), seed=seed)
        ss = [N.parameter(torch.tensor([0.1 * i, 0.2]), f"s{i}") for i in range(3)]
        shared = N.parameter(torch.tensor([1.0, 2.0]), "shared")
        parts = [N.WeightedItems()(N.apply(lambda s, h: s * h, s, shared), ["x", "y"]) for s in ss]
        loss = tx.nn.TextLoss("judge", eng)(tx.concat(parts))
        loss.backward(engine=eng)
        grads.append(shared.grad.clone())
    assert all(torch.equal(g, grads[0]) for g in grads)


class BadBridge(Function):
    hybrid = True
    name = "bad"

    async def backward(self, ctx, node, feedback, targets):
        return [torch.ones(7) for _ in targets]


def test_wrong_shape_bridge_gradient_is_a_clear_error():
    t = N.parameter(torch.zeros(3), "t")
    out = BadBridge().attach([t], "text", "formatted")
    loss = tx.Variable("bad", role="evaluation")
    loss = tx.concat([out, loss])
    with pytest.raises(GraphError, match="shape"):
        loss.backward(engine=ScriptedEngine("x"))


def test_text_only_graph_unchanged():
    eng = ScriptedEngine(responder())
    p = tx.Variable("p", role="system prompt", requires_grad=True)
    loss = tx.nn.TextLoss("judge", eng)(tx.nn.LLMCall(eng, p)("q"))
    loss.backward(engine=eng)
    assert len(p.grad) == 1


def test_apply_rejects_text():
    with pytest.raises(tx.errors.InvalidVariableError, match="bridge"):
        N.apply(torch.sin, tx.Variable("x"))


def test_no_grad_builds_neither_graph():
    a = N.parameter(torch.ones(2), "a")
    with tx.no_grad():
        out = N.apply(lambda x: x * 2, a)
    assert out.node is None and out.value.grad_fn is None and not out.requires_grad


def test_retrieval_kernel_in_the_graph_trains_the_adapter_like_torch():
    from textopt.kernels import cosine_topk
    eng = ScriptedEngine(responder(("harmful", "helpful")))
    g = torch.Generator().manual_seed(0)
    corpus, e = torch.randn(20, 6, generator=g), torch.randn(6, generator=g)
    a0 = torch.rand(6, generator=g) + 0.5
    adapter = N.parameter(a0, "query adapter")
    top = cosine_topk(e * adapter.value.detach(), corpus, 2)
    rows = corpus[top.indices]
    weights = N.apply(lambda a: torch.softmax(torch.nn.functional.cosine_similarity((e * a)[None], rows, dim=-1)
                                              / 0.1, 0), adapter)
    text = N.WeightedItems()(weights, [f"passage {i}" for i in top.indices.tolist()])
    tx.nn.TextLoss("judge", eng)(text).backward(engine=eng)
    ra = a0.clone().requires_grad_()
    w = torch.softmax(torch.nn.functional.cosine_similarity((e * ra)[None], rows, dim=-1) / 0.1, 0)
    w.backward(torch.tensor([1.0, -1.0]))
    assert torch.equal(adapter.grad, ra.grad)


def test_fused_logprob_kernel_as_a_numeric_loss_in_the_graph():
    from textopt.kernels import token_logprobs, token_logprobs_reference
    g = torch.Generator().manual_seed(1)
    x0, y = torch.randn(5, 11, generator=g), torch.randint(0, 11, (5,), generator=g)
    logits = N.parameter(x0, "logits")
    loss = N.apply(lambda l: -token_logprobs(l, y).sum(), logits)
    loss.backward()
    r = x0.clone().requires_grad_()
    (-token_logprobs_reference(r, y).sum()).backward()
    assert torch.allclose(logits.grad, r.grad, atol=1e-6)


def test_bridge_gradients_reach_upstream_score_through_numeric_ops_with_a_text_loss():
    """text loss -> WeightedItems -> softmax -> MetricScore: the score's text feedback follows the VJP of the item
    gradient, and the tensor grads are still plain torch's."""
    eng = ScriptedEngine(responder(("harmful", "helpful")))
    draft = tx.Variable("draft exemplar", role="exemplar", requires_grad=True)
    score = N.MetricScore(lambda s: 0.9, name="quality")(draft)
    bias = N.parameter(torch.tensor([0.2, 0.0]), "bias")
    weights = N.apply(lambda s, b: torch.softmax(torch.stack([3 * s, torch.tensor(1.0)]) + b, 0), score, bias)
    text = N.WeightedItems()(weights, ["the exemplar", "another"])
    tx.nn.TextLoss("judge", eng)(text).backward(engine=eng)
    # manual: d loss / d weights = [+1, -1] (harmful, helpful) -> d loss / d score by autograd
    s = torch.tensor(0.9, requires_grad=True)
    b = torch.tensor([0.2, 0.0], requires_grad=True)
    w = torch.softmax(torch.stack([3 * s, torch.tensor(1.0)]) + b, 0)
    w.backward(torch.tensor([1.0, -1.0]))
    assert s.grad > 0 and torch.equal(bias.grad, b.grad)
    fb = draft.grad[0].value
    assert "decreases" in fb and f"{float(s.grad):+.4g}" in fb


def test_output_grad_sums_prepass_and_bridge_signals():
    eng = ScriptedEngine(responder(("harmful", "helpful")))
    draft = tx.Variable("draft exemplar", role="exemplar", requires_grad=True)
    score = N.MetricScore(lambda s: 0.9, name="quality")(draft)
    weights = N.apply(lambda s: torch.softmax(torch.stack([3 * s, torch.tensor(1.0)]), 0), score)
    answer = tx.nn.LLMCall(eng, tx.Variable("sys", role="system prompt"))(N.WeightedItems()(weights, ["a", "b"]))
    judged = N.MetricScore(lambda s: 0.5, name="judge")(answer)
    loss = N.apply(lambda q, s: (1 - q) + s ** 2, judged, score)
    loss.backward(engine=eng)
    s = torch.tensor(0.9, requires_grad=True)
    torch.softmax(torch.stack([3 * s, torch.tensor(1.0)]), 0).backward(torch.tensor([1.0, -1.0]))
    expected = 2 * 0.9 + float(s.grad)
    fbs = [f.value for f in draft.grad]
    assert len(fbs) == 1 and f"{expected:+.4g}" in fbs[0]
    assert torch.allclose(score.grad, torch.tensor(expected))  # torch's own accumulation agrees
