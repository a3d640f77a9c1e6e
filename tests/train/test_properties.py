"""Property tests: the sampler resumes exactly from any point; checkpoints round-trip; batches run concurrently."""
import json
import random

import torch
from hypothesis import given, settings, strategies as st

import textopt as tx
from textopt.engines import ScriptedEngine
from textopt.train import Sampler, Trainer
from textopt.train import checkpoint as ckpt
from tests.train.toy import data, make_engines


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 20), bs=st.integers(1, 8), seed=st.integers(0, 10 ** 6), cut=st.integers(0, 12))
def test_sampler_resumes_from_any_point(n, bs, seed, cut):
    a = Sampler(n, bs, seed)
    seq = [a.next_batch() for _ in range(15)]
    b = Sampler(n, bs, seed)
    for _ in range(cut):
        b.next_batch()
    c = Sampler(n, bs, seed + 1)  # another seed, then loaded: the state wins
    c.load_state_dict(json.loads(json.dumps(b.state_dict())))
    assert [c.next_batch() for _ in range(15 - cut)] == seq[cut:]
    for batch in seq:
        assert len(batch) == min(bs, n) and len(set(batch)) == len(batch) and all(0 <= i < n for i in batch)


@settings(max_examples=40, deadline=None)
@given(obj=st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-10 ** 9, 10 ** 9), st.text(max_size=20),
                              st.floats(allow_nan=False, allow_infinity=False)),
                    lambda inner: st.one_of(st.lists(inner, max_size=4),
                                            st.dictionaries(st.text(max_size=5), inner, max_size=4)), max_leaves=20))
def test_checkpoint_json_round_trip(obj, tmp_path_factory):
    path = tmp_path_factory.mktemp("ck") / "c.json"
    ckpt.save(path, {"obj": obj, "t": torch.tensor([[1.5, -2.0]])})
    back = ckpt.load(path)
    assert back["obj"] == obj and torch.equal(back["t"], torch.tensor([[1.5, -2.0]]))


def test_rng_states_round_trip():
    state = json.loads(json.dumps(ckpt.rng_states()))
    a = (random.random(), torch.rand(2))
    ckpt.set_rng_states(state)
    b = (random.random(), torch.rand(2))
    assert a[0] == b[0] and torch.equal(a[1], b[1])


def test_batch_forward_runs_concurrently(tmp_path):
    fwd, teacher = make_engines()
    fwd.latency = 0.05
    p = tx.Variable("Handle small sums.", role="system prompt of the solver", requires_grad=True)
    tr = Trainer(tx.nn.LLMCall(fwd, system_prompt=p), tx.nn.NumberMatch(), tx.optim.TGD([p], engine=teacher),
                 train=data(8), batch_size=4, steps=1, seed=0, backward_engine=teacher, progress=False)
    tr.fit()
    assert fwd.peak_in_flight == 4
    assert tr.out_dir is None and tr.history[-1]["step"] == 1  # no out_dir: nothing written, still logged


def test_context_backward_engine_is_tracked(tmp_path):
    fwd, teacher = make_engines()
    p = tx.Variable("Solve.", role="system prompt of the solver", requires_grad=True)
    other = ScriptedEngine(lambda r: "fb", name="ctx-backward")
    with tx.backward_engine(other):
        tr = Trainer(tx.nn.LLMCall(fwd, system_prompt=p), tx.nn.NumberMatch(), tx.optim.TGD([p], engine=teacher),
                     train=data(2), batch_size=2, steps=1, seed=0, progress=False)
        tr.fit()
    assert other in tr.engines and tr.usage()["by_role"]["backward"]["calls"] == 2


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.json"
    ckpt.save(path, {"step": 1})

    def torn(src, dst):
        raise OSError("disk full at the worst moment")
    monkeypatch.setattr(ckpt.os, "replace", torn)
    try:
        ckpt.save(path, {"step": 2})
    except OSError:
        pass
    assert ckpt.load(path) == {"step": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.json"]  # no temp file left behind


def test_progress_bars(tmp_path, capsys):
    fwd, teacher = make_engines()
    p = tx.Variable("Solve.", role="system prompt of the solver", requires_grad=True)
    Trainer(tx.nn.LLMCall(fwd, system_prompt=p), tx.nn.NumberMatch(), tx.optim.TGD([p], engine=teacher),
            train=data(2), val=data(2, 10), test=data(2, 30), batch_size=2, steps=1, seed=0,
            backward_engine=teacher, progress=True).fit()
    err = capsys.readouterr().err
    assert "train" in err and "1/1" in err


def test_backward_engine_set_around_construction_is_used_in_fit():
    fwd, teacher = make_engines()
    p = tx.Variable("Solve.", role="system prompt of the solver", requires_grad=True)
    other = ScriptedEngine(lambda r: "fb", name="ctx-backward-2")
    with tx.backward_engine(other):
        tr = Trainer(tx.nn.LLMCall(fwd, system_prompt=p), tx.nn.NumberMatch(), tx.optim.TGD([p], engine=teacher),
                     train=data(2), batch_size=2, steps=1, seed=0, progress=False)
    tr.fit()
    assert len(other.requests) == 2 and all(r.role == "backward" for r in other.requests)


def test_with_torch_loaded_fit_seeds_its_generator_and_a_resume_restores_it_exactly(tmp_path):
    """A program that loaded torch (it has, if a parameter is a tensor) may draw from torch's generator: fit seeds
    it, every checkpoint holds it, and a resume restores it — the resumed run draws what the whole run drew.
    (A text program never loads torch: tests/test_layers.py.)"""
    draws: dict[str, list[float]] = {}

    def build(out, key: str) -> Trainer:
        fwd, teacher = make_engines()
        p = tx.Variable("Solve the sum.", role="system prompt of the solver", requires_grad=True, name="prompt")
        number = tx.nn.NumberMatch()

        async def loss(pred, ex):   # a loss that draws from torch's generator for every example
            draws.setdefault(key, []).append(torch.rand(1).item())
            return await number.acall(pred, ex.y)
        return Trainer(tx.nn.LLMCall(fwd, system_prompt=p), loss, tx.optim.TGD([p], engine=teacher), train=data(6),
                       batch_size=2, steps=3, out_dir=out, seed=7, backward_engine=teacher, progress=False,
                       plot=False, feedback_from="all", screen=False)

    torch.manual_seed(999)
    build(tmp_path / "full", "full").fit()
    assert draws["full"][0] == torch.rand(1, generator=torch.Generator().manual_seed(7)).item()   # seeded by fit
    build(tmp_path / "part", "part").fit(max_steps=1)
    assert "torch" in json.loads((tmp_path / "part" / "checkpoint.json").read_text())["rng"]
    torch.manual_seed(12345)                                   # a new process starts from another state
    build(tmp_path / "part", "part").resume()
    assert len(draws["full"]) == 6 and draws["part"] == draws["full"]
