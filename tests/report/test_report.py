"""``textopt report RUN_DIR`` and ``textopt graph --format html`` on real run folders (scripted engines)."""
import html
import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from textopt.cli import main
from textopt.report import diff_html, load_run
from textopt.errors import DataError

from tests.cli.scripted import NEW_PROMPT

from .runs import HOSTILE, WORSE, make_run

# anything in a page that could make a browser fetch (an SVG's url(#marker) points inside the page)
NETWORK = re.compile(r"""(?:src|href|action|poster|data)\s*=\s*["']?\s*(?:https?:|//)|url\(\s*["']?(?!#)"""
                     r"""|@import|<script|<link|<iframe|<object|<embed|<img""", re.I)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    make_run(root / "tgd")
    make_run(root / "beam", optimizer="beam", steps=2)
    make_run(root / "hostile", "--prompt", HOSTILE, steps=1)
    return root


def _report(run_dir, capsys) -> str:
    assert main(["report", str(run_dir)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {run_dir / 'report.html'}"
    return (run_dir / "report.html").read_text(encoding="utf-8")


def test_tgd_report_shows_curve_diffs_feedback_status_usage_graph(runs, capsys):
    page = _report(runs / "tgd", capsys)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert page.count('aria-label="score curve"') == 1 and page.count("<polyline") == 2   # train and val
    assert "<title>step 0: validation 0.000</title>" in page and "<title>step 2: validation 1.000</title>" in page
    assert "<title>step 1: reverted</title>" in page                                    # the grey bar
    # step 1 tried WORSE and was reverted; step 2 added "Give the count first." to the prompt
    assert "proposed (then reverted):" in page and f"<ins>{WORSE.split()[1]}</ins>" in page
    assert "<ins>Give the count first.</ins>" in page or "<ins> Give the count first.</ins>" in page
    assert page.count('class="badge reverted"') == 1 and page.count('class="badge accepted"') == 1
    assert 'class="badge skipped"' in page and "every example of the batch scored 1.0" in page
    # the feedback that drove the steps, escaped (the scripted backward engine writes a <b> tag)
    assert "feedback on system_prompt (2)" in page
    assert "count first &lt;b&gt;now&lt;/b&gt;." in page and "<b>now</b>" not in page
    usage = json.loads((runs / "tgd" / "summary.json").read_text())["usage"]["by_role"]
    for role in ("backward", "optimizer", "forward", "eval"):
        assert f"<tr><td>{role}</td><td class=\"n\">{usage[role]['calls']}</td>" in page
    assert 'aria-label="computation graph"' in page and "system prompt of the language" in page
    assert not NETWORK.search(page)


def test_search_report_shows_best_per_step_and_candidates(runs, capsys):
    page = _report(runs / "beam", capsys)
    run = load_run(runs / "beam")
    assert run.kind == "search" and [s.step for s in run.steps] == [0, 1, 2]
    assert [s.status for s in run.steps] == ["initial", "no new best", "new best"]
    assert run.steps[2].values == {"system_prompt": NEW_PROMPT}
    cands = [c for s in run.steps for c in s.candidates]
    assert {c.values["system_prompt"] for c in cands} == {WORSE, NEW_PROMPT}
    assert all(c.parent_values and c.val is not None for c in cands)
    assert any("count first <b>now</b>" not in f and "Wrong" in f for c in cands for f in c.feedback)
    assert page.count("candidate ") >= 2 and 'class="badge new-best"' in page
    assert "<polyline" in page and "train (batch)" not in page   # a search has no training-batch score
    assert not NETWORK.search(page)


def test_a_search_checkpoint_from_before_the_trainer_reads_the_same(runs, tmp_path):
    """A search run's checkpoint is the Trainer's (the optimizer's state under "optimizer"); a search folder
    written before searches ran in the Trainer holds the optimizer's state alone, and reads the same."""
    import shutil
    old = tmp_path / "old"
    shutil.copytree(runs / "beam", old)
    state = json.loads((runs / "beam" / "checkpoint.json").read_text())
    assert state["step"] == 2 and "store" in state["optimizer"]["extra"]
    (old / "checkpoint.json").write_text(json.dumps(state["optimizer"]))   # the old layout: the optimizer's only
    (old / "result.json").unlink()                                         # and no result.json
    new_run, old_run = load_run(runs / "beam"), load_run(old)
    assert new_run.result["best_val"] == 1.0 and old_run.result is None
    assert [(s.step, s.status, s.values, s.candidates) for s in old_run.steps] == \
        [(s.step, s.status, s.values, s.candidates) for s in new_run.steps]
    assert sum(len(s.candidates) for s in old_run.steps) >= 2


def test_html_in_prompts_and_feedback_is_inert(runs, capsys):
    page = _report(runs / "hostile", capsys)
    assert "<script" not in page.lower() and "<img" not in page.lower() and "onerror=alert" in page
    assert html.escape("<script>document.title='pwned'</script>", quote=True) in page
    # the reverted proposal is a diff whose removed part is the hostile prompt, escaped
    assert re.search(r"<del>[^<]*&lt;script&gt;", page)


def test_report_of_an_unfinished_run(runs, tmp_path, capsys):
    """A run without summary.json (interrupted) is shown as far as it got, usage from the last log row."""
    import shutil
    part = tmp_path / "part"
    shutil.copytree(runs / "tgd", part)
    (part / "summary.json").unlink()
    (part / "result.json").unlink()
    lines = (part / "log.jsonl").read_text().splitlines()
    (part / "log.jsonl").write_text("\n".join(lines[:2]) + "\n")
    page = _report(part, capsys)
    assert "the run did not finish" in page and page.count('class="step"') == 2 and "<td>optimizer</td>" in page


@pytest.mark.parametrize("setup, message", [
    (lambda d: None, "no such folder"),
    (lambda d: d.mkdir(), "has no config.json and no log.jsonl"),
    (lambda d: (d.mkdir(), (d / "config.json").write_text("[1]")), "holds a JSON list"),
    (lambda d: (d.mkdir(), (d / "config.json").write_text("{")), "invalid JSON"),
    (lambda d: (d.mkdir(), (d / "config.json").write_text("{}"), (d / "log.jsonl").write_text("{}\n[2]\n")),
     "log.jsonl:2: a log row must be a JSON object"),
])
def test_bad_run_folders_are_one_error(tmp_path, capsys, setup, message):
    run = tmp_path / "run"
    setup(run)
    assert main(["report", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("textopt: error: ") and message in err and err.count("\n") == 1


def test_report_out_and_a_run_whose_task_cannot_be_rebuilt(runs, tmp_path, capsys):
    import shutil
    odd = tmp_path / "odd"
    shutil.copytree(runs / "tgd", odd)
    cfg = json.loads((odd / "config.json").read_text())
    (odd / "config.json").write_text(json.dumps({**cfg, "task": "no_such_task"}))
    assert main(["report", str(odd), "--out", str(tmp_path / "x" / "r.html")]) == 0
    page = (tmp_path / "x" / "r.html").read_text()
    assert "no graph: the run&#x27;s task could not be rebuilt here" in page and "no_such_task" in page


def test_graph_format_html(tmp_path, capsys):
    out = tmp_path / "g.html"
    assert main(["graph", "--task", "format_count", "--format", "html", "--out", str(out)]) == 0
    page = out.read_text()
    assert page.count("<rect") >= 3 and page.count("<path") >= 2 and "#ffe9a8" in page   # a trainable leaf
    assert "<title>textopt graph: format_count</title>" in page and not NETWORK.search(page)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab <>&\"'/\n")) | st.characters(), max_size=40),
       st.text(alphabet=st.sampled_from(list("ab <>&\"'/\n")) | st.characters(), max_size=40))
def test_diff_is_escaped_and_reconstructs_both_texts(old, new):
    out = diff_html(old, new)
    assert not re.search(r"<(?!/?(?:del|ins)>)", out)   # the only tags are ours
    rewrite = re.fullmatch(r"<del>(.*)</del>\n<ins>(.*)</ins>", out, flags=re.S)
    if rewrite:
        assert html.unescape(rewrite[1]) == old and html.unescape(rewrite[2]) == new
        return
    keep_new = re.sub(r"<del>.*?</del>", "", out, flags=re.S).replace("<ins>", "").replace("</ins>", "")
    keep_old = re.sub(r"<ins>.*?</ins>", "", out, flags=re.S).replace("<del>", "").replace("</del>", "")
    assert html.unescape(keep_new) == new and html.unescape(keep_old) == old


def test_load_run_refuses_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(DataError, match="is a file, not a run folder"):
        load_run(tmp_path / "f")


def test_step_statuses_of_a_hand_written_log(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"task": "format_count", "optimizer": "tgd"}))
    p = {"system_prompt": "A"}
    rows = [{"step": 0, "kind": "init", "params": p, "val_score": 0.5},
            {"step": 1, "kind": "step", "params": p, "unchanged": ["system_prompt"], "feedback": {"x": ["f"]}},
            {"step": 2, "kind": "step", "params": p, "step_error": "unusable answer"},
            {"step": 3, "kind": "step", "params": {"system_prompt": "B"}, "val_score": True, "train_score": "x"},
            {"event": "not a trainer row"}]
    (tmp_path / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    run = load_run(tmp_path)
    assert [(s.step, s.status) for s in run.steps] == [(0, "initial"), (1, "unchanged"), (2, "error"),
                                                       (3, "accepted")]
    assert "the same values as step" not in _page_of(run)
    assert run.steps[1].detail == "the optimizer left system_prompt as it was" and run.steps[1].feedback == \
        {"x": ["f"]}
    assert run.steps[3].val is None and run.steps[3].train is None and run.summary is None and run.usage is None


def test_a_trainer_folder_from_the_python_api(runs, tmp_path, capsys):
    """Trainer(out_dir=...) writes the log, the checkpoint and result.json but no config.json."""
    import shutil
    api = tmp_path / "api"
    api.mkdir()
    for name in ("log.jsonl", "checkpoint.json", "result.json"):
        shutil.copy(runs / "tgd" / name, api / name)
    page = _report(api, capsys)
    assert "no graph: the folder does not name its task" in page and page.count('class="step"') == 4
    assert "<th>best val</th><td class=\"n\">100.0%</td>" in page
    assert "<td>backward</td>" in page and "<polyline" in page


def _page_of(run) -> str:
    from textopt.report import run_page
    return run_page(run)


def test_a_proposal_tried_again_is_named(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"task": "t"}))
    a, b = {"system_prompt": "A"}, {"system_prompt": "B"}
    rows = [{"step": 0, "kind": "init", "params": a},
            {"step": 1, "kind": "step", "params": a, "reverted": True, "proposed": b},
            {"step": 2, "kind": "step", "params": a, "reverted": True, "proposed": b},
            {"step": 3, "kind": "step", "params": b}]
    (tmp_path / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    page = _page_of(load_run(tmp_path))
    assert page.count("the same values as step 1 tried") == 2 and page.count("proposed (then reverted)") == 2


def test_a_search_log_before_and_after_the_shared_schema_reads_the_same(tmp_path):
    """A search run's log rows are the Trainer's schema (kind, val_score, params); a log written before it
    (event, best_score, best_values) still reads the same."""
    old, new = tmp_path / "old", tmp_path / "new"
    rows = {old: [{"event": "new_best", "hash": "h0", "score": 0.2},
                  {"event": "step", "step": 1, "best_score": 0.8, "best_values": {"system_prompt": "B"},
                   "stopped": None}],
            new: [{"kind": "init", "step": 0, "val_score": 0.2, "params": {"system_prompt": "A"}},
                  {"kind": "new_best", "step": 0, "hash": "h0", "score": 0.2},
                  {"kind": "step", "step": 1, "val_score": 0.8, "best_val": 0.8, "params": {"system_prompt": "B"},
                   "stopped": None, "usage": {"by_role": {}, "total": {"calls": 3}}}]}
    runs = {}
    for folder, log in rows.items():
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps({"task": "format_count", "optimizer": "beam",
                                                        "initial_prompt": "A"}))
        (folder / "summary.json").write_text(json.dumps({"val_before": 0.2}))
        (folder / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
        runs[folder] = load_run(folder)
    for run in runs.values():
        assert run.kind == "search"
        assert [(s.step, s.val, s.values, s.status) for s in run.steps] == [
            (0, 0.2, {"system_prompt": "A"}, "initial"), (1, 0.8, {"system_prompt": "B"}, "new best")]
    assert runs[old].usage is None and runs[new].usage == {"by_role": {}, "total": {"calls": 3}}
    (new / "summary.json").unlink()   # stopped early: the starting point is the log's init row
    assert [(s.step, s.val, s.values) for s in load_run(new).steps][0] == (0, 0.2, {"system_prompt": "A"})
