"""``textopt`` command line: ``optimize``, ``eval``, ``graph``, ``report``, ``tasks``.

    textopt optimize --task format_count --engine local --optimizer tgd --steps 3 --batch-size 3 --out runs/demo
    textopt optimize --task counting --engine openai:gpt-4o-mini --optimizer beam --steps 2 --out runs/beam
    textopt optimize --config run.toml --steps 5          # flags from a file; the command line overrides it
    textopt report runs/demo                              # one self-contained HTML page of a run
    textopt eval --task counting --engine local --prompt "Answer the question." --split test --size 20
    textopt graph --task counting --format mermaid
    textopt tasks

Responses are cached on disk by default (``--no-cache`` or ``TEXTOPT_CACHE=0`` to turn it off; ``TEXTOPT_CACHE_DIR`` or
``--cache-dir`` to move it), so rerunning the same command makes no LLM call.
"""
from __future__ import annotations

import argparse
import math
import sys
import warnings

from .checks import writable
from .errors import TextoptError


class Parser(argparse.ArgumentParser):
    """argparse with the CLI's error convention: exit code 2 and ONE line naming the option and the fix (no
    usage dump)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def integer(lo: int, hi: int | None = None):
    """An argparse type: an integer in [lo, hi]."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < lo or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"must be {'>= ' + str(lo) if hi is None else f'from {lo} to {hi}'}"
                                             f", got {text}")
        return value
    parse.__name__ = "integer"
    return parse


def usd(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an amount in USD such as 0.50, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite amount >= 0, got {text}")
    return value


def output(kind: str):
    """An argparse type: a path textopt can write as a ``kind`` ("file" or "dir"), checked before any work."""
    def parse(text: str) -> str:
        try:
            writable(text, "", kind=kind)
        except TextoptError as exc:
            raise argparse.ArgumentTypeError(str(exc).strip()) from None
        return text
    parse.__name__ = f"{kind} path"
    return parse


SEED = integer(0, 2 ** 63 - 1)   # torch's generators take 64-bit seeds


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", required=True, help="task name (see `textopt tasks`)")
    p.add_argument("--data", default=None, help="data file or folder overriding the shipped BBH / GSM8K data")
    p.add_argument("--engine", default="local",
                   help="forward engine spec: local, openai:MODEL, anthropic:MODEL, openai:http://HOST/v1#MODEL, "
                        "replay:FILE.jsonl, scripted (default: local)")
    p.add_argument("--seed", type=SEED, default=0, help="seed of the data splits and the sampler (default 0)")
    p.add_argument("--train-size", type=integer(0), default=None, help="training examples (default 50)")
    p.add_argument("--val-size", type=integer(0), default=None, help="validation examples (default 100)")
    p.add_argument("--test-size", type=integer(0), default=None, help="test examples (default 100)")
    p.add_argument("--prompt", default=None, help="starting system prompt (default: the task's own)")
    p.add_argument("--prompt-file", default=None, help="read the starting system prompt from this file")
    p.add_argument("--no-cache", action="store_true", help="do not use the on-disk response cache")
    p.add_argument("--cache-dir", default=None, type=output("dir"),
                   help="response cache folder (default ~/.cache/textopt/responses)")
    p.add_argument("--cache", default=None, metavar="URL",
                   help="a response cache shared by processes and machines: redis://HOST:PORT/DB")
    p.add_argument("--budget-usd", type=usd, default=None, help="stop before spending more than this (USD; a "
                   "model without a known price counts $0 and is warned about: use --budget-tokens for it)")
    p.add_argument("--budget-tokens", type=integer(1), default=None,
                   help="stop before more than this many tokens (prompt + completion) are used: any model")
    rec = p.add_mutually_exclusive_group()
    rec.add_argument("--record", default=None, type=output("file"), metavar="FILE.jsonl",
                     help="record every LLM call to this cassette (turns the cache off for this run)")
    rec.add_argument("--replay", default=None, metavar="FILE.jsonl",
                     help="answer every LLM call from this cassette (no model, no network)")
    p.add_argument("--concurrency", type=integer(1, 4096), default=8,
                   help="concurrent evaluations (default 8; per worker with --executor ray)")
    p.add_argument("--executor", default="local", choices=["local", "ray"],
                   help="where evaluations run: this process (default) or Ray tasks (pip install 'textopt[ray]')")
    p.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="the Ray cluster to use with --executor ray (default: a running one, else a local one)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="textopt", description="Optimize LLM prompts by backpropagating "
                                     "textual feedback.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("optimize", help="optimize the task's system prompt and report before/after accuracy")
    _common(p)
    p.add_argument("--optimizer", default="tgd", metavar="NAME",
                   help="tgd (textual gradient descent, default), or a search over candidates: beam, pareto, opro, "
                        "demos (few-shot demonstrations); searches propose from the train split and select on "
                        "the val split")
    p.add_argument("--backward-engine", default=None, help="engine writing the feedback (default: --engine)")
    p.add_argument("--optimizer-engine", default=None, help="engine writing new prompts (default: "
                                                            "--backward-engine)")
    p.add_argument("--steps", type=integer(0), default=3, help="optimizer steps (search: search iterations; default 3)")
    p.add_argument("--batch-size", type=integer(1), default=3,
                   help="training examples per step (search: its training minibatch; default 3)")
    p.add_argument("--out", default="runs/latest", type=output("dir"),
                   help="output folder (default runs/latest)")
    p.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    p.add_argument("--no-revert", action="store_true", help="keep updates that lower the validation score (tgd only)")
    p.add_argument("--patience", type=integer(1), default=None, help="stop after N steps without a new best")
    p.add_argument("--feedback-from", default="failures", choices=["failures", "all"],
                   help="backpropagate only the examples scored below 1.0 (default; an all-correct batch is a "
                        "skipped step) or every example (tgd only)")
    p.add_argument("--no-screen", action="store_true",
                   help="validate every update without first re-scoring it on its minibatch (tgd only)")
    p.add_argument("--max-new-tokens", type=integer(1), default=None,
                   help="longest new prompt the optimizer may write (default: 80 on local, 1024 otherwise)")
    p.add_argument("--feedback-tokens", type=integer(1), default=None,
                   help="longest feedback the backward engine may write (default: 96 on local, 384 otherwise)")
    p.add_argument("--dry-run", action="store_true",
                   help="make no LLM call: print the run's estimated calls, tokens and dollars by phase and role")
    p.add_argument("--json", action="store_true", help="with --dry-run: print the estimate as JSON")
    p.add_argument("--config", default=None, metavar="FILE",
                   help="read these flags from a TOML file (task = \"counting\", batch-size = 3, no-cache = true) "
                        "or a run folder's config.json (repeats that run); flags given here override the file")
    p.set_defaults(func=_optimize)

    p = sub.add_parser("eval", help="score a prompt on one split of a task")
    _common(p)
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument("--out", default=None, type=output("file"),
                   help="write per-example results to this JSONL file")
    p.set_defaults(func=_eval)

    p = sub.add_parser("graph", help="export the computation graph of one training example")
    _common(p)
    p.add_argument("--format", default="dot", choices=["dot", "mermaid", "png", "html"],
                   help="dot, mermaid, png (needs graphviz) or html (one self-contained page, inline SVG)")
    p.add_argument("--out", default=None, type=output("file"),
                   help="output file (default: stdout for dot/mermaid, graph.png, graph.html)")
    p.set_defaults(func=_graph, engine="scripted:Answer: 0")

    p = sub.add_parser("report", help="write one self-contained HTML page for a `textopt optimize` run folder",
                       description="One HTML file (no network: inline CSS and SVG, no script): the score curve, "
                                   "each step's prompt as a diff, the feedback that drove it, accepted/reverted, "
                                   "usage by role and the graph. Open it in any browser.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="the --out folder of a `textopt optimize` run")
    p.add_argument("--out", default=None, type=output("file"), help="output file (default RUN_DIR/report.html)")
    p.set_defaults(func=_report)

    p = sub.add_parser("tasks", help="list the known tasks")
    p.set_defaults(func=_tasks)
    return parser


def _optimize(args) -> int:
    from .commands.optimize import run_optimize
    return run_optimize(args)


def _eval(args) -> int:
    from .commands.evaluate import run_eval
    return run_eval(args)


def _graph(args) -> int:
    from .commands.graph import run_graph
    return run_graph(args)


def _report(args) -> int:
    from .commands.report import run_report
    return run_report(args)


def _tasks(args) -> int:
    from .tasks import GENERATED, get_task, list_tasks
    for name in list_tasks():
        desc = get_task(name).description if name in GENERATED else "needs --data PATH"
        print(f"{name:<42} {desc}")
    return 0


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"textopt: warning: {message}\n"


def main(argv: list[str] | None = None) -> int:
    from .commands.config_file import expand
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        argv = expand(parser, argv)   # --config FILE: its flags first, so the command line's win
    except TextoptError as exc:
        print(f"textopt: error: {exc}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    shown = warnings.formatwarning
    warnings.formatwarning = _one_line_warning   # a user's terminal gets the message, not our source line
    try:
        return args.func(args)
    except TextoptError as exc:
        print(f"textopt: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:   # the file system refused (disk full, permissions changed mid-run): one line
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"textopt: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("textopt: interrupted (rerun with --resume to continue from the last checkpoint)", file=sys.stderr)
        return 130
    finally:
        warnings.formatwarning = shown


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
