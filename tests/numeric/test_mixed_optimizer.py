"""MixedOptimizer: torch optimizer + text optimizer stepped together, one state_dict (JSON round trip)."""
import copy
import hashlib
import json

import pytest
import torch

import textopt as tx
from textopt import numeric as N
from textopt.engines import ScriptedEngine
from textopt.errors import InvalidVariableError, OptimizerStepError
from textopt.optim import Optimizer
from textopt.optim.mixed import MixedOptimizer
from textopt.train.checkpoint import from_jsonable, to_jsonable


class Counter(Optimizer):
    """Tiny deterministic text optimizer: appends its step count and the feedback length."""

    def __init__(self, params, tag: str = "v"):
        super().__init__(params, {"tag": tag})

    async def astep(self):
        for g in self.param_groups:
            for p in g["params"]:
                if p.is_text and p.grad:
                    st = self.state[p]
                    st["step"] = st.get("step", 0) + 1
                    p.value = f"{p.value.split(' #')[0]} #{g['tag']}{st['step']}:{len(p.grad_text())}"
        return {"ok": True}


class Failing(Optimizer):
    def __init__(self, params):
        super().__init__(params, {})

    async def astep(self):
        raise OptimizerStepError("no update")


def engine():
    return ScriptedEngine(lambda req: "ans-" + hashlib.sha256(req.messages[-1].content.encode()).hexdigest()[:6])


class World:
    """prompt (text) + w (tensor): answer = LLM(prompt), score = metric(answer), loss = numeric(w, score, step)."""

    def __init__(self):
        self.eng = engine()
        self.prompt = tx.Variable("Solve it.", role="system prompt", requires_grad=True)
        self.w = N.parameter(torch.tensor([0.3, -0.7, 1.1]), "weights")
        self.b = N.parameter(torch.tensor(0.5), "bias")
        self.call = tx.nn.LLMCall(self.eng, self.prompt)
        self.k = 0

    def params(self):
        return [self.prompt, self.w, self.b]

    def backward(self):
        x = torch.tensor([1.0, 2.0, 3.0]) * (1 + self.k)
        self.k += 1
        answer = self.call(f"question {self.k}")
        score = N.MetricScore(lambda s: (int(s[-2:], 16) / 255.0, "hex"), name="m")(answer)
        loss = N.apply(lambda s, w, b: ((w * x).sum() + b - s * 4) ** 2, score, self.w, self.b)
        loss.backward(engine=self.eng)

    def values(self):
        return self.prompt.value, self.w.value.detach().clone(), self.b.value.detach().clone()


def make(world, **kw):
    kw.setdefault("text", Counter)
    kw.setdefault("tensor", "adam")
    kw.setdefault("tensor_options", {"lr": 0.1})
    return MixedOptimizer(world.params(), **kw)


def run(world, opt, n):
    for _ in range(n):
        opt.zero_grad()
        world.backward()
        opt.step()


def test_step_updates_both_kinds_and_tensors_like_plain_adam():
    world = World()
    opt = make(world)
    ref_w = world.w.value.detach().clone().requires_grad_()
    ref_b = world.b.value.detach().clone().requires_grad_()
    ref = torch.optim.Adam([ref_w, ref_b], lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        world.backward()
        ref_w.grad, ref_b.grad = world.w.grad.clone(), world.b.grad.clone()
        assert len(world.prompt.grad) == 1
        opt.step()
        ref.step()
        assert torch.equal(world.w.value, ref_w) and torch.equal(world.b.value, ref_b)
    assert world.prompt.value.startswith("Solve it. #v3:")


def test_state_dict_json_round_trip_continues_exactly():
    full = World()
    opt_full = make(full)
    run(full, opt_full, 4)

    first = World()
    opt_first = make(first)
    run(first, opt_first, 2)
    saved = from_jsonable(json.loads(json.dumps(to_jsonable(opt_first.state_dict()))))
    run(first, opt_first, 1)  # the interrupted process goes on a bit; ignored

    resumed = World()
    resumed.k = 2
    opt_res = make(resumed)
    opt_res.load_state_dict(saved)
    assert opt_res.tensor.state[resumed.w.value]["exp_avg"].shape == (3,)  # Adam moments came back
    run(resumed, opt_res, 2)
    a, b = resumed.values(), full.values()
    assert a[0] == b[0] and torch.equal(a[1], b[1]) and torch.equal(a[2], b[2])
    assert json.dumps(to_jsonable(opt_res.state_dict()), sort_keys=True) == \
        json.dumps(to_jsonable(opt_full.state_dict()), sort_keys=True)


def test_tensor_only_step_and_failed_text_step_changes_nothing():
    world = World()
    opt = make(world)
    opt.zero_grad()
    world.backward()
    before = world.values()
    opt.step(text=False)
    assert world.prompt.value == before[0] and not torch.equal(world.w.value, before[1])

    world2 = World()
    opt2 = make(world2, text=Failing)
    world2.backward()
    before = world2.values()
    with pytest.raises(OptimizerStepError):
        opt2.step()
    assert torch.equal(world2.w.value, before[1]) and world2.prompt.value == before[0]


def test_param_groups_split_by_kind_with_options():
    world = World()
    opt = MixedOptimizer([{"params": [world.prompt, world.w], "lr": 0.5, "tag": "g"},
                          {"params": [world.b], "lr": 0.01}], text=lambda groups: Counter(groups), tensor="sgd")
    assert [g["lr"] for g in opt.tensor.param_groups] == [0.5, 0.01]
    assert opt.text.param_groups[0]["tag"] == "g"
    world.backward()
    b0, w0 = world.b.value.detach().clone(), world.w.value.detach().clone()
    gw, gb = world.w.grad.clone(), world.b.grad.clone()
    opt.step()
    assert torch.allclose(world.w.value, w0 - 0.5 * gw) and torch.allclose(world.b.value, b0 - 0.01 * gb)
    assert "#g1" in world.prompt.value


def test_instances_registry_names_and_errors():
    world = World()
    text_opt = Counter([world.prompt])
    torch_opt = torch.optim.SGD([world.w.value, world.b.value], lr=0.1)
    opt = MixedOptimizer(world.params(), text=text_opt, tensor=torch_opt)
    assert opt.text is text_opt and opt.tensor is torch_opt
    with pytest.raises(InvalidVariableError, match="exactly the text parameters"):
        MixedOptimizer(world.params(), text=Counter([tx.Variable("x", role="other", requires_grad=True)]))
    with pytest.raises(InvalidVariableError, match="exactly the tensors"):
        MixedOptimizer(world.params(), text=Counter, tensor=torch.optim.SGD([world.w.value], lr=0.1))
    with pytest.raises(InvalidVariableError, match="unknown text optimizer"):
        MixedOptimizer(world.params(), text="no-such-optimizer")
    with pytest.raises(InvalidVariableError, match="unknown tensor optimizer"):
        MixedOptimizer(world.params(), text=Counter, tensor="lbfgs2")
    tgd = MixedOptimizer(world.params(), text="tgd", engine=world.eng)
    assert type(tgd.text).__name__ == "TGD" and tgd.text.engine is world.eng
    other = MixedOptimizer([world.w], tensor="adam")
    with pytest.raises(InvalidVariableError, match="layout"):
        other.load_state_dict(opt.state_dict())


def test_with_tgd_and_scripted_engine_one_loop():
    from textopt.optim.prompts import NEW_VALUE_TAG
    world = World()
    world.eng.responder = lambda req: (f"<{NEW_VALUE_TAG}>Solve it carefully.</{NEW_VALUE_TAG}>"
                                       if req.role == "optimizer" else "ans-0a1b2c")
    opt = MixedOptimizer(world.params(), text="tgd", tensor="adam", engine=world.eng,
                         tensor_options={"lr": 0.1})
    world.backward()
    w0 = world.w.value.detach().clone()
    opt.step()
    assert world.prompt.value == "Solve it carefully." and not torch.equal(world.w.value, w0)
    sd = copy.deepcopy(opt.state_dict())
    assert sd["text"]["state"] and sd["tensor"]["state"]
