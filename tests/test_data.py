"""The one data vocabulary (``textopt.data``): one Example, one Splits, the guard that keeps the test split from
every optimizer (search, Trainer, the command line), the one RNG-state codec, the one text clipper and the one
table of number words."""
import json
import pickle
import random
import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import textopt as tx
from textopt.data import Example, Split, Splits, rng_state_from_json, rng_state_to_json
from textopt.errors import CheckpointError, DataError
from textopt.functional import clip, one_line


# -- one Example, one Splits ---------------------------------------------------------------------------------
def test_one_example_and_one_splits_everywhere():
    import textopt.optim as optim
    import textopt.tasks as tasks
    import textopt.train as train
    assert tasks.Example is train.Example is Example
    assert tasks.Splits is optim.Splits is Splits
    ex = Example("What is 2+2?", "4", {"line": 3})
    assert (ex.x, ex.y) == (ex.input, ex.target) == ("What is 2+2?", "4")
    assert Example(x="q", y="a") == Example("q", "a") == Example.coerce({"input": "q", "target": "a", "id": 1})
    assert Example.coerce(("q", "a")).meta == {} and Example.coerce({"x": "q", "id": 1}).meta == {"id": 1}
    assert ex == Example("What is 2+2?", "4") and hash(ex) == hash(Example("What is 2+2?", "4"))  # meta aside
    assert repr(Example("q", "a")) == "Example(input='q', target='a', meta={})"   # demos quote it in prompts
    with pytest.raises(DataError, match="both input= and x="):
        Example("q", x="q")


def test_task_splits_are_named_and_keep_their_names():
    s = tx.tasks.get_task("format_count").splits(4, 3, 3, seed=0)
    assert [part.name for part in (s.train, s.val, s.test)] == ["train", "val", "test"]
    assert s.test[:2].name == "test" and s.test[1] == s.test[1:][0] and s["val"] is s.val
    assert (s.train + s.val).name == "train" and (s.train[:2] + s.test[:1]).name == "test"
    assert s.sizes() == (4, 3, 3) and s.for_optimizer().train is s.train
    assert pickle.loads(pickle.dumps(s.test)).name == "test" and pickle.loads(pickle.dumps(s)) == s
    plain = Splits([1, 2], [3], [4])
    assert plain.val == Split([3], "val") and plain.test.name == "test"
    with pytest.raises(DataError, match=r"test split was passed as Splits\(val=...\)"):
        Splits(s.train, s.test, s.test)


def test_the_data_vocabulary_sits_just_above_the_core():
    """tasks, train, optim and the command line all import it, so it imports nothing of theirs."""
    from tests.test_layers import CORE, textopt_imports
    assert textopt_imports("textopt.data") <= CORE


# -- the test split never reaches an optimizer ---------------------------------------------------------------
def _splits():
    return tx.tasks.get_task("format_count").splits(4, 3, 3, seed=0)


def _evaluate(candidate, example):
    return 1.0


@pytest.mark.parametrize("how", ["valset", "valset slice", "trainset", "data"])
def test_a_search_refuses_the_test_split(how):
    s = _splits()
    p = tx.Variable("Answer.", role="system prompt", requires_grad=True, name="p")
    kw = {"valset": {"trainset": s.train, "valset": s.test},
          "valset slice": {"trainset": s.train, "valset": s.test[:2]},
          "trainset": {"trainset": s.test, "valset": s.val},
          "data": {"data": s}}[how]
    with pytest.raises(DataError, match="test split") as err:
        tx.optim.BeamSearch([p], _evaluate, **kw)
    assert "splits.for_optimizer()" in str(err.value)     # the message says what to pass instead


@pytest.mark.parametrize("field", ["train", "val"])
def test_the_trainer_refuses_the_test_split_as_train_or_val(field):
    s = _splits()
    p = tx.Variable("Answer.", role="system prompt", requires_grad=True, name="p")
    engine = tx.get_engine("scripted", cache=False)
    model = tx.nn.LLMCall(engine, system_prompt=p)
    args = {"train": s.train, "val": s.val, "test": s.test, field: s.test[:2]}
    with pytest.raises(DataError, match=f"test split was passed as the Trainer's {field}=") as err:
        tx.train.Trainer(model, tx.nn.NumberMatch(), tx.optim.TGD([p], engine=engine), progress=False, **args)
    assert "test=splits.test" in str(err.value)
    ok = tx.train.Trainer(model, tx.nn.NumberMatch(), tx.optim.TGD([p], engine=engine), train=s.train,
                          val=s.val, test=s.test, progress=False, plot=False)
    assert ok.test_set.name == "test" and isinstance(ok.train_set[0], Example)


@pytest.mark.parametrize("field", ["train", "val"])
def test_the_trainer_refuses_test_examples_that_lost_their_name(field):
    """``list(splits.test)`` (or its examples rebuilt as dicts) loses the split's name, not its examples: a
    Trainer that also holds the test split refuses a part made only of test examples."""
    s = _splits()
    p = tx.Variable("Answer.", role="system prompt", requires_grad=True, name="p")
    engine = tx.get_engine("scripted", cache=False)
    model = tx.nn.LLMCall(engine, system_prompt=p)
    for copied in (list(s.test), [{"x": e.x, "y": e.y} for e in s.test][:2]):
        args = {"train": s.train, "val": s.val, "test": s.test, field: copied}
        with pytest.raises(DataError, match=f"every example of {field}=") as err:
            tx.train.Trainer(model, tx.nn.NumberMatch(), tx.optim.TGD([p], engine=engine), progress=False, **args)
        assert "splits." in str(err.value)


@given(n_train=st.integers(1, 6), shared=st.integers(0, 6), unhashable=st.booleans())
@settings(max_examples=40, deadline=None)
def test_the_overlap_guard_counts_shared_examples(n_train, shared, unhashable):
    """Some test examples in train: a warning with the count (repeated dataset items); all of them: an error;
    none: silence. Inputs that cannot be hashed (dicts) are compared by their text."""
    from textopt.data import refuse_test_examples
    make = (lambda i: Example({"q": i}, i)) if unhashable else (lambda i: Example(f"q{i}", i))
    test = [make(i) for i in range(100, 106)]
    shared = min(shared, n_train)
    train = [make(i) for i in range(n_train - shared)] + test[:shared]
    if shared == n_train:
        with pytest.raises(DataError, match=f"every example of train= \\({shared}\\)"):
            refuse_test_examples(test, {"train": train}, "fix")
    elif shared:
        with pytest.warns(UserWarning, match=f"{shared} of the {n_train} train examples"):
            refuse_test_examples(test, {"train": train}, "fix")
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            refuse_test_examples(test, {"train": train}, "fix")


def test_the_command_line_hands_optimizers_train_and_val_only(tmp_path, monkeypatch, capsys):
    """Both CLI paths build ``task.splits(...)`` and pass them on by name; a command that handed the test split
    to its optimizer (simulated here) stops with one textopt error instead of searching on it."""
    from tests.cli import test_optimize  # noqa: F401  (registers the "clitest" engine)
    from textopt.cli import main
    from textopt.runs import tgd
    seen = {}

    class Spy(tgd.Trainer):
        def __init__(self, *a, **kw):
            seen.update({k: getattr(kw[k], "name", None) for k in ("train", "val", "test")})
            super().__init__(*a, **kw)

    monkeypatch.setattr(tgd, "Trainer", Spy)
    base = ["optimize", "--task", "format_count", "--engine", "clitest", "--steps", "1", "--batch-size", "2",
            "--train-size", "4", "--val-size", "3", "--test-size", "3", "--quiet", "--no-cache"]
    assert main(base + ["--out", str(tmp_path / "tgd")]) == 0
    assert seen == {"train": "train", "val": "val", "test": "test"}
    capsys.readouterr()
    from textopt.data import OptimizerData
    monkeypatch.setattr(Splits, "for_optimizer", lambda self: OptimizerData(self.train, self.test))
    assert main(base + ["--optimizer", "beam", "--out", str(tmp_path / "beam")]) == 2
    err = capsys.readouterr().err
    assert "test split was passed as valset" in err and "for_optimizer" in err


# -- one RNG-state codec -------------------------------------------------------------------------------------
DRAWS = st.lists(st.sampled_from(["random", "gauss", "randint", "shuffle", "getrandbits"]), max_size=40)


@settings(max_examples=60, deadline=None)
@given(seed=st.one_of(st.integers(), st.text(max_size=20)), draws=DRAWS)
def test_rng_states_round_trip_exactly_through_json(seed, draws):
    rng = random.Random(seed)
    for d in draws:
        {"random": rng.random, "gauss": lambda: rng.gauss(0, 1), "randint": lambda: rng.randint(0, 9),
         "shuffle": lambda: rng.shuffle(list(range(7))), "getrandbits": lambda: rng.getrandbits(70)}[d]()
    clone = random.Random()
    clone.setstate(rng_state_from_json(json.loads(json.dumps(rng_state_to_json(rng.getstate())))))
    assert clone.getstate() == rng.getstate()
    assert [clone.gauss(0, 1), clone.random()] == [rng.gauss(0, 1), rng.random()]


@given(st.one_of(st.none(), st.integers(), st.text(), st.lists(st.integers(), max_size=4)))
def test_a_malformed_rng_state_is_one_checkpoint_error(bad):
    with pytest.raises(CheckpointError, match="random-generator state"):
        rng_state_from_json(bad)


def test_every_seeded_state_uses_the_one_codec():
    from textopt.train import Sampler
    from textopt.train.checkpoint import rng_states
    sampler = Sampler(10, 3, seed=4)
    sampler.next_batch()
    assert sampler.state_dict()["rng"] == rng_state_to_json(sampler.rng.getstate())
    assert rng_states()["python"] == rng_state_to_json(random.getstate())
    s = _splits()
    opt = tx.optim.BeamSearch([tx.Variable("A.", role="system prompt", requires_grad=True, name="p")],
                              _evaluate, data=s.for_optimizer(), seed=5)
    opt.rng.random()
    state = json.loads(json.dumps(opt.state_dict()))
    assert state["extra"]["rng"] == rng_state_to_json(opt.rng.getstate())
    again = tx.optim.BeamSearch([tx.Variable("A.", role="system prompt", requires_grad=True, name="p")],
                                _evaluate, data=s.for_optimizer(), seed=5)
    again.load_state_dict(state)
    assert again.rng.random() == opt.rng.random()


# -- one clipper ---------------------------------------------------------------------------------------------
TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=300)


@given(TEXT, st.integers(40, 200), st.sampled_from([0.0, 1 / 3, 0.5]), st.sampled_from([" ", "\n"]))
def test_clip_keeps_head_and_tail_within_the_bound(text, n, tail, sep):
    out = clip(text, n, tail=tail, sep=sep)
    if len(text) <= n:
        assert out == text
        return
    assert len(out) == n and f"[... {len(text) - n} characters cut ...]" in out
    head, _, rest = out.partition(f"{sep}[...")
    assert text.startswith(head) and text.endswith(rest.partition(f"...]{sep}")[2])


def _old_label(text, n, ellipsis):   # the SVG labels' and the metrics' quotes' own clippers, before they merged
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - len(ellipsis)] + ellipsis


@given(TEXT, st.integers(4, 200), st.sampled_from(["...", "\u2026"]))
def test_one_line_is_byte_identical_to_the_clippers_it_replaced(text, n, ellipsis):
    assert one_line(text, n, ellipsis) == _old_label(text, n, ellipsis)


# -- one table of number words -------------------------------------------------------------------------------
def test_one_table_of_number_words():
    from textopt.tasks.demo import first_count
    from textopt.tasks.generated import _phrase
    from textopt.tasks.metrics import NUMBER_WORDS, WORD_VALUES, extract_number
    assert NUMBER_WORDS[20] == "twenty" and WORD_VALUES["seventeen"] == 17
    assert extract_number("Answer: seventeen") == "17" and extract_number("no number here") is None
    assert first_count("Two apples, then 3 more.") == "2"
    assert first_count("Eleven? No: 4.") == "4"        # the demo's strict metric reads words up to "ten" only
    assert _phrase("apple", 3) == "three apples"
