"""Self-contained HTML pages: ``run_page`` (a ``textopt optimize`` run) and ``graph_page`` (a computation graph).

One file each, readable offline: the CSS is inline, the curve and the graph are inline SVG, and the page has no
script, no font, no image and no link to fetch. Every text that came from a model or a file (prompts, feedback,
task data, error messages) goes through :func:`html.escape`, so a ``<script>`` in a prompt is shown, never run.
"""
from __future__ import annotations

import difflib
import json
import re
from html import escape

from .run import Run, Step
from .svg import curve_svg, graph_svg

CSS = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:24px auto;max-width:1100px;
 padding:0 16px;color:#222;background:#fafafa}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:6px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;
 vertical-align:top}th{background:#f0f0f0}td.n{text-align:right;font-variant-numeric:tabular-nums}
.muted{color:#777}.step{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px 12px;margin:10px 0}
.prompt{white-space:pre-wrap;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:13px;background:#f7f7f7;
 padding:6px 8px;border-radius:4px;margin:4px 0}
del{background:#fdd;color:#900}ins{background:#dfd;color:#060;text-decoration:none}
.badge{display:inline-block;padding:0 8px;border-radius:10px;font-size:12px;color:#fff;background:#888}
.accepted,.new-best{background:#2a7}.reverted,.error{background:#c33}.skipped,.unchanged,.no-new-best{background:#999}
.initial{background:#36c}ul.fb{margin:4px 0;padding-left:20px}ul.fb li{white-space:pre-wrap}
.scroll{overflow-x:auto}
"""


def _e(x) -> str:
    return escape("" if x is None else str(x), quote=True)


def _num(x) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def _pct(x) -> str:
    x = _num(x)
    return "&ndash;" if x is None else f"{100 * x:.1f}%"


def page(title: str, body: list[str]) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{_e(title)}</title><style>{CSS}</style></head>\n<body>\n" + "\n".join(body)
            + "\n</body></html>\n")


_TOKEN = re.compile(r"\s+|[^\s]+")
REWRITE_RATIO = 0.4   # below this word similarity a new value is shown as a rewrite (old struck, new whole)


def diff_html(old: str, new: str) -> str:
    """A word-level diff of two texts: removed words in ``<del>``, added in ``<ins>``, all escaped; two texts
    with few words in common are shown as a rewrite (the old one struck, then the new one)."""
    a, b = _TOKEN.findall(old or ""), _TOKEN.findall(new or "")
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    if a and b and matcher.ratio() < REWRITE_RATIO:   # a rewrite: word-level edits would only be noise
        return f"<del>{_e(old)}</del>\n<ins>{_e(new)}</ins>"
    out = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            out.append(_e("".join(a[i1:i2])))
            continue
        if i2 > i1:
            out.append(f"<del>{_e(''.join(a[i1:i2]))}</del>")
        if j2 > j1:
            out.append(f"<ins>{_e(''.join(b[j1:j2]))}</ins>")
    return "".join(out)


def _values_diff(old: dict, new: dict) -> str:
    parts = []
    for name in sorted(set(old) | set(new), key=lambda n: (n not in new, n)):
        before, after = str(old.get(name, "")), str(new.get(name, ""))
        label = f"<div class=\"muted\">{_e(name)}{'' if before != after else ' (unchanged)'}</div>"
        parts.append(label + f"<div class=\"prompt\">{diff_html(before, after)}</div>")
    return "".join(parts)


def _feedback(items: dict) -> str:
    if not items:
        return ""
    out = []
    for name, texts in items.items():
        lis = "".join(f"<li>{_e(t)}</li>" for t in texts)
        out.append(f"<details open><summary>feedback on {_e(name)} ({len(texts)})</summary>"
                   f"<ul class=\"fb\">{lis}</ul></details>")
    return "".join(out)


def _badge(status: str) -> str:
    return f"<span class=\"badge {_e(status.replace(' ', '-'))}\">{_e(status)}</span>"


def _step_html(step: Step, prev: dict, repeat_of: int | None = None) -> str:
    scores = " &middot; ".join(f"{k} {_pct(v)}" for k, v in (("train", step.train), ("val", step.val))
                               if v is not None)
    head = (f"<div><b>step {step.step}</b> {_badge(step.status)} <span class=\"muted\">{scores}"
            f"{' &middot; ' + _e(step.detail) if step.detail else ''}</span></div>")
    body = [head, _feedback(step.feedback)]
    if repeat_of is not None:
        body.append(f"<div class=\"muted\">the same values as step {repeat_of} tried</div>")
    if step.status == "initial":
        body.append(_values_diff({}, step.values).replace("<ins>", "<span>").replace("</ins>", "</span>"))
    elif step.proposed:
        body.append("<div class=\"muted\">proposed (then reverted):</div>" + _values_diff(prev, step.proposed))
    elif step.values != prev:
        body.append(_values_diff(prev, step.values))
    elif not step.candidates:
        body.append("<div class=\"muted\">parameters unchanged</div>")
    for c in step.candidates:
        body.append(f"<details><summary>candidate {_e(c.hash)} ({_e(c.origin)}), val {_pct(c.val)}</summary>"
                    + _feedback({"its parent's training examples": c.feedback} if c.feedback else {})
                    + _values_diff(c.parent_values, c.values) + "</details>")
    return "<div class=\"step\">" + "".join(body) + "</div>"


def usage_table(usage: dict | None) -> str:
    if not usage or not isinstance(usage.get("by_role"), dict):
        return "<p class=\"muted\">no usage recorded</p>"
    rows = []
    cols = ("calls", "cached", "prompt_tokens", "completion_tokens", "cost")
    for group, title in (("by_role", "role"), ("by_node", "node")):
        table = usage.get(group) or {}
        if not table:
            continue
        rows.append(f"<table><tr><th>{title}</th><th>calls</th><th>cached</th><th>prompt tokens</th>"
                    "<th>completion tokens</th><th>USD</th></tr>")
        items = list(table.items()) + ([("total", usage["total"])] if group == "by_role" and
                                        isinstance(usage.get("total"), dict) else [])
        for name, t in items:
            t = t if isinstance(t, dict) else {}
            cells = "".join(f"<td class=\"n\">{_e(_money(t.get(c)) if c == 'cost' else t.get(c, 0))}</td>"
                            for c in cols)
            rows.append(f"<tr><td>{'<b>total</b>' if name == 'total' else _e(name)}</td>{cells}</tr>")
        rows.append("</table>")
    return "".join(rows)


def _money(x) -> str:
    return f"{x:.4f}" if isinstance(x, (int, float)) else "0"


def _overview(run: Run) -> str:
    c, s = run.config, run.summary or {}
    rows = [("task", c.get("task")), ("optimizer", c.get("optimizer", "tgd")), ("engine", c.get("engine")),
            ("backward engine", c.get("backward_engine")), ("optimizer engine", c.get("optimizer_engine")),
            ("train / val / test examples", " / ".join(map(str, c.get("sizes") or [])) or None),
            ("seed", c.get("seed")), ("steps", s.get("steps", c.get("steps"))),
            ("accepted steps", ", ".join(map(str, s.get("accepted_steps") or [])) or ("none" if s else None)),
            ("stopped", s.get("stopped")), ("wall time", f"{s['wall_s']:.1f} s" if "wall_s" in s else None)]
    table = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows if v not in (None, ""))
    scores = ""
    if s:
        scores = ("<table><tr><th></th><th>before</th><th>after</th></tr>"
                  f"<tr><th>val</th><td class=\"n\">{_pct(s.get('val_before'))}</td>"
                  f"<td class=\"n\">{_pct(s.get('val_after'))}</td></tr>"
                  f"<tr><th>test</th><td class=\"n\">{_pct(s.get('test_before'))}</td>"
                  f"<td class=\"n\">{_pct(s.get('test_after'))}</td></tr></table>")
    elif run.result is not None:
        r = run.result
        scores = ("<table><tr><th>best val</th><td class=\"n\">" + _pct(_num(r.get("best_val"))) + "</td></tr>"
                  "<tr><th>test (best parameters)</th><td class=\"n\">" + _pct(_num(r.get("test_score")))
                  + "</td></tr></table>")
    else:
        scores = "<p class=\"muted\">no summary.json: the run did not finish; shown as far as it got</p>"
    final = ""
    if s.get("optimized_prompt") is not None:
        final = ("<h2>Prompt: initial &rarr; optimized</h2><div class=\"prompt\">"
                 + diff_html(str(s.get("initial_prompt", c.get("initial_prompt", ""))), str(s["optimized_prompt"]))
                 + "</div>")
    return f"<table>{table}</table>{scores}{final}"


def run_page(run: Run, *, graph=None, graph_note: str = "") -> str:
    """The report of ``run``. ``graph``: a networkx graph (:func:`textopt.graph.to_networkx`) of one example
    through the run's pipeline, or None with ``graph_note`` saying why there is none."""
    title = f"textopt run {run.path.name}" + (f": {run.config['task']}" if run.config.get("task") else "")
    points = [{"step": st.step, "train": st.train, "val": st.val} for st in run.steps]
    marks = [st.step for st in run.steps if st.status == "reverted"]
    body = [f"<h1>{_e(title)}</h1><p class=\"muted\">{_e(run.path)}</p>", _overview(run),
            "<h2>Score curve</h2>" + ("<div class=\"scroll\">" + curve_svg(points, marks=marks) + "</div>"
                                      if points else "<p class=\"muted\">no step logged yet</p>")]
    if run.kind == "search":
        body.append("<p class=\"muted\">validation: the best candidate's mean score after each step</p>")
    body.append("<h2>Steps</h2><p class=\"muted\">each step's values as a diff against the values before it "
                "(<del>removed</del> <ins>added</ins>), and the feedback that drove it</p>")
    prev: dict = {}
    tried: dict[str, int] = {}   # each proposal's first step: a run that proposes one value again is visible
    for st in run.steps:
        new = st.proposed or (st.values if st.values != prev else None)
        key = json.dumps(new, sort_keys=True) if new else None
        body.append(_step_html(st, prev, tried.get(key) if key and st.status != "initial" else None))
        if key:
            tried.setdefault(key, st.step)
        prev = st.values or prev
    body.append("<h2>Usage by role</h2>" + usage_table(run.usage))
    body.append("<h2>Graph</h2>" + (f"<p class=\"muted\">{_e(graph_note)}</p>" if graph_note else "")
                + ("<div class=\"scroll\">" + graph_svg(graph) + "</div>" if graph is not None else ""))
    return page(title, body)


def graph_page(graph, title: str = "textopt graph") -> str:
    """A page holding one computation graph (``textopt graph --format html``)."""
    return page(title, [f"<h1>{_e(title)}</h1>", "<p class=\"muted\">inputs on the left; yellow: trainable "
                        "parameters; hover a box for its whole value</p>",
                        "<div class=\"scroll\">" + graph_svg(graph) + "</div>"])
