"""The datasets that ship inside the package: every BBH task and GSM8K resolve by name with no ``data=``, equal the
source copies, ``data=`` still overrides, and a wheel built from this tree carries the data and the licences."""
import gzip
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from textopt.cli import main
from textopt.errors import DataError
from textopt.tasks import BBH_TASKS, get_task
from textopt.tasks.packaged import bbh_path, data_dir, gsm8k_path, licence_text

from ..conftest import ROOT, SHARED

SOURCE = next((p for p in (SHARED / "datasets", Path("/work/shared/datasets")) if p.is_dir()), None)


@pytest.mark.parametrize("name", BBH_TASKS)
def test_every_bbh_task_resolves_by_name_from_the_shipped_data(name):
    task = get_task(name)
    assert task.name == name and len(task) >= 100
    assert task.source == str(bbh_path(name)) and "MIT" in task.licence
    ex = task.examples[0]
    assert task.score(f"Reasoning.\nAnswer: {ex.target}", ex.target).value == 1.0
    assert get_task(f"bbh:{name}").examples == task.examples
    if SOURCE is not None:  # the shipped copy holds exactly the source examples
        src = json.loads((SOURCE / "bbh" / f"{name}.json").read_text())["examples"]
        assert [(e.input, e.target) for e in task.examples] == [(d["input"], d["target"]) for d in src]


def test_gsm8k_test_split_ships():
    task = get_task("gsm8k")
    assert len(task) == 1319 and task.source == str(gsm8k_path())
    assert task.examples[0].target == "18"  # Janet's ducks
    assert "MIT" in task.licence


def test_data_still_overrides_the_shipped_copy(tmp_path):
    mine = tmp_path / "object_counting.json"
    mine.write_text(json.dumps({"examples": [{"input": "How many?", "target": "7"}]}))
    task = get_task("object_counting", data=tmp_path)
    assert [e.target for e in task.examples] == ["7"] and task.source == str(mine)
    gz = tmp_path / "g.jsonl.gz"
    gz.write_bytes(gzip.compress(b'{"question": "1+1?", "answer": "two\\n#### 2"}\n'))
    assert [e.target for e in get_task("gsm8k", data=gz).examples] == ["2"]


def test_a_corrupt_gzip_is_one_clear_data_error(tmp_path):
    bad = tmp_path / "t.json.gz"
    bad.write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="not a readable gzip file"):
        get_task("bbh", data=bad)


def test_licences_ship_with_the_data():
    assert "MIT License" in licence_text("bbh") and "suzgunmirac" in licence_text("bbh")
    assert "MIT License" in licence_text("gsm8k") and "OpenAI" in licence_text("gsm8k")
    with pytest.raises(DataError, match="shipped: bbh, gsm8k"):
        licence_text("mmlu")


def test_cli_optimizes_a_bbh_task_without_data(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["optimize", "--task", "object_counting", "--engine", "scripted", "--steps", "1", "--batch-size", "2",
            "--train-size", "2", "--val-size", "3", "--test-size", "3", "--quiet", "--no-cache", "--out", str(out)]
    assert main(args) == 0, capsys.readouterr().err
    config = json.loads((out / "config.json").read_text())
    assert config["task"] == "object_counting" and config["data"] is None


def test_the_wheel_carries_data_licences_and_py_typed(tmp_path):
    """Build the wheel offline from a copy of this tree (no build isolation: setuptools is already installed; the
    copy keeps build/ and egg-info folders, and their stale files, out of the working tree)."""
    pytest.importorskip("setuptools", reason="setuptools is not installed (it is in the dev extra): "
                                              "pip install -e '.[dev]'")
    src = tmp_path / "src"
    shutil.copytree(ROOT / "textopt", src / "textopt", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                           "-q", "-w", str(tmp_path), str(src)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    wheel, = tmp_path.glob("textopt-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {f"textopt/tasks/data/{p.name}" for p in data_dir().iterdir() if p.is_file()}
    assert {f"textopt/tasks/data/bbh-{n}.json.gz" for n in BBH_TASKS} <= names
    assert {"textopt/tasks/data/gsm8k-test.jsonl.gz", "textopt/tasks/data/LICENSE-bbh.txt",
            "textopt/tasks/data/LICENSE-gsm8k.txt", "textopt/py.typed"} <= names
    assert shipped <= names
    assert wheel.stat().st_size < 5_000_000, f"the wheel grew to {wheel.stat().st_size} bytes"
    with zipfile.ZipFile(wheel) as z:
        assert "MIT License" in z.read("textopt/tasks/data/LICENSE-gsm8k.txt").decode()
