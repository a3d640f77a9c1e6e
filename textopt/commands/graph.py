"""``textopt graph``: run one training example through the task's pipeline and export its graph (DOT, Mermaid,
PNG through graphviz's ``dot`` when it is installed, or one self-contained HTML page with an inline SVG). The
default engine is scripted: no model is needed to see the structure."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from ..errors import TextoptError
from ..graph import to_dot, to_mermaid
from ..tasks import get_task
from ..runs import task_graph
from .common import engine_set, load_prompt


def run_graph(args) -> int:
    task = get_task(args.task, args.data)
    splits = task.splits(args.train_size if args.train_size is not None else 1, 0, 0, seed=args.seed)
    if not splits.train:
        raise TextoptError(f"task {task.name!r} has no example to draw")
    engine = engine_set(args).get(args.engine)
    loss = task_graph(task, engine, load_prompt(args, task), splits.train[0])
    if args.format == "html":
        from ..graph import to_networkx
        from ..report import graph_page
        return _emit(graph_page(to_networkx(loss), f"textopt graph: {task.name}"), args.out or "graph.html")
    if args.format == "mermaid":
        return _emit(to_mermaid(loss), args.out)
    dot = to_dot(loss)
    if args.format == "dot":
        return _emit(dot, args.out)
    exe = shutil.which("dot")
    if exe is None:
        raise TextoptError("--format png needs graphviz's `dot` program (apt-get install graphviz); "
                           "use --format dot or --format mermaid instead")
    out = Path(args.out or "graph.png")
    out.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([exe, "-Tpng", "-o", str(out)], input=dot, text=True, capture_output=True, timeout=60)
    if proc.returncode != 0:
        raise TextoptError(f"graphviz dot failed: {proc.stderr.strip()[:300]}")
    print(f"wrote {out}")
    return 0


def _emit(text: str, out: str | None) -> int:
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text + "\n", encoding="utf-8")
        print(f"wrote {out}")
    else:
        sys.stdout.write(text + "\n")
    return 0
