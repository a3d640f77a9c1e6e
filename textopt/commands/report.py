"""``textopt report RUN_DIR``: one self-contained HTML page for a ``textopt optimize`` run folder (TGD or a
search): the score curve, each step's prompt as a diff against the one before, the feedback that drove it,
accepted/reverted, usage by role and the pipeline's graph. The page is built by :mod:`textopt.report`; the
graph is drawn from one training example run through the task's pipeline on a scripted engine (no model call,
the same structure as the run's)."""
from __future__ import annotations

from pathlib import Path

from ..checks import writable
from ..errors import TextoptError
from ..report import load_run, run_page
from ..train.checkpoint import atomic_write_text


def run_graph_of(config: dict):
    """The networkx graph of one training example through the run's task pipeline, or (None, why not)."""
    from ..engines import get_engine
    from ..graph import to_networkx
    from ..tasks import get_task
    from ..runs import task_graph
    if not config.get("task"):
        return None, "no graph: the folder does not name its task (a Trainer run from the Python API)"
    try:
        task = get_task(str(config.get("task")), config.get("data"))
        example = task.splits(1, 0, 0, seed=int(config.get("seed") or 0)).train[0]
        prompt = str(config.get("initial_prompt") or "")
        loss = task_graph(task, get_engine("scripted:Answer: 0"), prompt, example)
        return to_networkx(loss), ("one training example through the task's pipeline (drawn with a scripted "
                                   "engine: the structure of the run, not its answers)")
    except (TextoptError, IndexError, ValueError, TypeError) as exc:
        return None, f"no graph: the run's task could not be rebuilt here ({exc})"


def run_report(args) -> int:
    run = load_run(args.run_dir)
    out = Path(args.out) if args.out else run.path / "report.html"
    writable(out, "--out")
    graph, note = run_graph_of(run.config)
    atomic_write_text(out, run_page(run, graph=graph, graph_note=note))
    print(f"wrote {out}")
    return 0
