"""One run log for every run loop (``textopt.train.runlog``): the Trainer's rows and a search's rows share the
schema, ``plot_curve`` draws both, a resumed run rewinds its log, and ``textopt report`` still reads a search
log written before the schema was shared."""
import json

import pytest

from textopt.errors import DataError
from textopt.optim import BeamSearch, JsonlLog
from textopt.train.curve import plot_curve
from textopt.train.runlog import RunLog, curve_points, kind_of, read_rows

from tests.optim import search_world as W


def test_rows_are_sorted_json_lines_and_rewind_keeps_whole_steps(tmp_path):
    log = RunLog(tmp_path / "log.jsonl")
    log.append({"step": 0, "kind": "init", "val_score": 0.5, "params": {"p": "a"}})
    log.append({"step": 0, "kind": "proposed", "hash": "h"})
    log.append({"step": 1, "kind": "step", "val_score": 0.75, "params": {"p": "b"}, "odd": {1, 2}})
    log.append({"step": 1, "kind": "proposed", "hash": "i"})
    log.append({"step": 2, "kind": "step", "val_score": 0.75, "params": {"p": "b"}})
    lines = (tmp_path / "log.jsonl").read_text(encoding="utf-8").splitlines()
    assert lines[0] == json.dumps(json.loads(lines[0]), sort_keys=True, ensure_ascii=False)
    assert json.loads(lines[2])["odd"] == "{1, 2}"   # what JSON cannot hold is written as its str
    assert [r["step"] for r in curve_points(read_rows(log.path))] == [0, 1, 2]
    log.rewind(1)   # the checkpoint was taken after step 1: step 2's rows (and anything after step 1) go
    assert [kind_of(r) for r in read_rows(log.path)] == ["init", "proposed", "step"]
    log.clear()
    assert not log.path.exists() and read_rows(log.path) == []
    (tmp_path / "bad.jsonl").write_text('{"step": 0}\n{broken\n')
    with pytest.raises(DataError, match="bad.jsonl"):
        read_rows(tmp_path / "bad.jsonl")


def test_a_search_writes_the_trainers_schema_and_its_curve(tmp_path):
    opt = BeamSearch({"prompt": W.make_param()}, W.evaluate, engine=W.make_engine(), trainset=W.TRAIN,
                     valset=W.VAL, callbacks=[JsonlLog(tmp_path / "log.jsonl")])
    opt.step()
    opt.step()
    rows = read_rows(tmp_path / "log.jsonl")
    assert all(isinstance(r["step"], int) and "kind" in r for r in rows)
    points = curve_points(rows)
    assert [(r["kind"], r["step"]) for r in points] == [("init", 0), ("step", 1), ("step", 2)]
    for r in points:   # the curve's fields, as a Trainer row has them
        assert set(r) >= {"val_score", "best_val", "params", "train_score"} and set(r["params"]) == {"prompt"}
    assert points[0]["params"] == {"prompt": W.SEED_PROMPT}
    assert points[0]["val_score"] == W.accuracy(W.SEED_PROMPT)
    assert points[-1]["val_score"] == opt.best_score and points[-1]["params"] == opt.current_values()
    png = plot_curve(rows, tmp_path / "curve.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
