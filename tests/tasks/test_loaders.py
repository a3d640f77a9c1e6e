"""Loaders on the real BBH and GSM8K files and on small written files. The real files are ../shared's when it is
there, else the copies shipped in the package (a clean clone has no ../shared: these tests must run there too)."""
import json

import pytest

from textopt.errors import DataError
from textopt.tasks import BBH_TASKS, get_task, load_bbh, load_gsm8k
from textopt.tasks import packaged

from ..conftest import SHARED

BBH = SHARED / "datasets" / "bbh"
GSM = SHARED / "datasets" / "gsm8k"


def bbh_file(name: str):
    """../shared's BBH file of ``name``, else the package's gzipped copy."""
    return BBH / f"{name}.json" if BBH.is_dir() else packaged.bbh_path(name)


def gsm_file():
    return GSM / "test.jsonl" if GSM.is_dir() else packaged.gsm8k_path()

EXPECTED_KIND = {"object_counting": "number_match", "multistep_arithmetic_two": "number_match",
                 "boolean_expressions": "label_match", "date_understanding": "choice_match",
                 "word_sorting": "text_match", "dyck_languages": "text_match", "navigate": "label_match"}


@pytest.mark.parametrize("name", BBH_TASKS)
def test_every_bbh_task_loads_and_its_targets_score_correct(name):
    task = get_task(name, data=bbh_file(name))
    assert len(task) >= 100
    for ex in task.examples[:30]:
        # the gold target written in the format our prompts ask for must score 1.0
        assert task.score(f"Some reasoning.\nAnswer: {ex.target}", ex.target).value == 1.0, (name, ex.target)
    if name in EXPECTED_KIND:
        assert task.metric.__name__ == EXPECTED_KIND[name]


def test_bbh_splits_follow_the_convention_and_are_seeded():
    task = get_task("bbh:object_counting", data=bbh_file("object_counting"))
    a, b = task.splits(seed=1), task.splits(seed=1)
    assert a.sizes() == (50, 100, 100)
    assert [e.input for e in a.test] == [e.input for e in b.test]
    assert [e.input for e in task.splits(seed=2).test] != [e.input for e in a.test]
    inputs = [e.input for s in (a.train, a.val, a.test) for e in s]
    assert len(set(inputs)) == len(inputs)


def test_small_bbh_task_shrinks_splits_in_proportion():
    task = get_task("penguins_in_a_table", data=bbh_file("penguins_in_a_table"))  # 146 examples < 250
    sizes = task.splits().sizes()
    assert sum(sizes) == len(task) and all(s > 0 for s in sizes)


def test_gsm8k_loads_with_final_numbers():
    task = load_gsm8k(gsm_file())
    assert len(task) == 1319
    ex = task.examples[0]
    assert ex.target.lstrip("-").isdigit() and "####" in ex.meta["solution"]
    assert task.score(f"... so she makes {ex.target} dollars.", ex.target).value == 1.0
    assert task.score("The answer is 0.5", ex.target).value == 0.0


def test_bbh_from_a_written_file(tmp_path):
    p = tmp_path / "mine.json"
    p.write_text(json.dumps({"examples": [{"input": f"q{i}", "target": "(A)" if i % 2 else "(B)"}
                                          for i in range(10)]}))
    task = load_bbh(p)
    assert task.name == "mine" and len(task) == 10
    assert task.score("I think (C)... no. Answer: (A)", "(A)").value == 1.0
    assert task.score("Answer: (B)", "(A)").explanation.startswith("Wrong option")


def test_gsm8k_numbers_with_commas(tmp_path):
    p = tmp_path / "g.jsonl"
    p.write_text(json.dumps({"question": "q", "answer": "work\n#### 1,250"}) + "\n")
    task = load_gsm8k(p)
    assert task.examples[0].target == "1250"
    assert task.score("Answer: 1,250", "1250").value == 1.0


def test_file_tasks_without_data_say_how_to_fix():
    with pytest.raises(DataError, match="--data my_task.json"):
        get_task("bbh")
    with pytest.raises(DataError, match="unknown BIG-Bench Hard task 'nope'.*--data|data=PATH"):
        get_task("bbh:nope")
    with pytest.raises(DataError, match="unknown task 'nope'"):
        get_task("nope")
