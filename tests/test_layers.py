"""The layers of textopt, read from the source's own imports (``ast``: module-level, function-level and
``TYPE_CHECKING`` imports alike), and what importing the core actually loads.

Layers, bottom up: the core (``CORE``: Variable, Function, backward and its numeric half, grad modes, lazy calls,
the private loop, errors) imports only itself, the standard library and torch; ``engines`` and ``kernels`` build
on the core only; ``nn``, ``numeric``, ``optim``, ``train`` ... on those; ``cli`` and ``commands`` on everything,
and nothing in the library imports them. Between packages there is no circle, the whole library's module-level
imports have none, and inside the core the only late (function-level) imports that close a circle are the
methods that call one step up, as ``torch.Tensor.backward`` does.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "textopt"

CORE = {f"textopt.{m}" for m in ("errors", "checks", "grad_mode", "variable", "function", "backward", "hybrid",
                                  "functional", "lazy", "runtime", "prompts")}
CORE_THIRD_PARTY = {"torch"}
# Late imports inside the core that call one step up (each is a method of a lower module): Variable.backward and
# abackward, Variable.__add__ (concat), a pending Variable waiting for its call, run_sync's barrier.
CORE_LATE_UP = {("textopt.variable", "textopt.backward"), ("textopt.variable", "textopt.functional"),
                ("textopt.variable", "textopt.lazy"), ("textopt.runtime", "textopt.lazy")}
# package -> the packages it may import (besides itself and the core)
MAY_IMPORT = {"engines": {"kernels"}, "kernels": set()}
FRONT_ENDS = {"cli", "commands"}
RUN = ("top", "late")   # the imports that run (circles are about these; layers about every import)


@lru_cache(maxsize=None)
def modules() -> dict[str, tuple[Path, bool]]:
    out = {}
    for path in sorted(PKG.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_pkg else parts)] = (path, is_pkg)
    return out


@lru_cache(maxsize=None)
def imports(name: str) -> tuple[tuple[str, str], ...]:
    """(imported module, kind) for every import in ``name``'s source; kind is "top" (module level), "late"
    (inside a function) or "typing" (under ``if TYPE_CHECKING:``, never run). ``from a import b`` names ``a.b``
    when that is a module of textopt, else ``a``."""
    path, is_pkg = modules()[name]
    package = name if is_pkg else name.rpartition(".")[0]
    found: list[tuple[str, str]] = []

    def visit(node: ast.AST, top: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = top
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) and top == "top":
                inner = "late"
            elif isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                inner = "typing"
            if isinstance(child, ast.Import):
                found.extend((a.name, top) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                    mod = ".".join(base + ([child.module] if child.module else []))
                else:
                    mod = child.module
                for a in child.names:
                    full = f"{mod}.{a.name}"
                    found.append((full if full in modules() else mod, top))
            visit(child, inner)

    visit(ast.parse(path.read_text(encoding="utf-8")), "top")
    return tuple(found)


def textopt_imports(name: str, kinds: tuple[str, ...] = ("top", "late", "typing")) -> set[str]:
    """The modules of textopt that ``name`` imports (of the given kinds)."""
    out = set()
    for mod, kind in imports(name):
        if mod.split(".")[0] != "textopt" or kind not in kinds:
            continue
        while mod not in modules():   # "textopt.engines.Engine" is an attribute: its module is the package
            mod = mod.rpartition(".")[0]
        out.add(mod)
    return out


def package(name: str) -> str:
    """``core``, a subpackage or top-level module name (``engines``, ``nn``, ``graph``), or ``textopt``."""
    if name in CORE:
        return "core"
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "textopt"


def circles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components with more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = set()
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.add(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        found.append(comp)
    return found


# The graph core a reader learns textopt from: Variable and Feedback, Function and Node, the backward pass and its
# numeric half, grad modes, errors. The rest of CORE is its plumbing (lazy calls, the private loop, checks of
# arguments, concat, prompt texts).
GRAPH_CORE = ("variable", "function", "backward", "hybrid", "grad_mode", "errors")


def code_lines(path: Path) -> int:
    """Lines of code: not blank, not a comment, not part of a docstring."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body and \
                isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and \
                isinstance(body[0].value.value, str):
            docs.update(range(body[0].lineno, body[0].end_lineno + 1))
    lines = path.read_text(encoding="utf-8").splitlines()
    return sum(1 for i, line in enumerate(lines, 1) if line.strip() and not line.strip().startswith("#")
               and i not in docs)


def test_the_graph_core_reads_in_one_sitting():
    """Under 600 lines of code (its docstrings, which state the contracts, not counted), and no module of the core
    over ~400 lines in all."""
    total = sum(code_lines(PKG / f"{m}.py") for m in GRAPH_CORE)
    assert total < 600, f"the graph core has {total} lines of code"
    for m in CORE:
        n = len(modules()[m][0].read_text(encoding="utf-8").splitlines())
        assert n <= 420, f"{m} has {n} lines"


def test_the_parser_sees_every_kind_of_import():
    got = dict(imports("textopt.variable"))
    assert got["textopt.errors"] == "top"
    assert got["textopt.backward"] == "late"              # inside Variable.backward
    assert got["textopt.function"] == "typing"            # under TYPE_CHECKING
    assert package("textopt.nn.llm") == "nn" and package("textopt.lazy") == "core"
    assert circles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [{"a", "b"}]


def test_core_imports_only_core_stdlib_and_torch():
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    bad = []
    for name in sorted(CORE):
        above = textopt_imports(name) - CORE
        if above:
            bad.append(f"{name} imports {sorted(above)}")
        bad += [f"{name} imports {mod}" for mod, _ in imports(name)
                if mod.split(".")[0] not in stdlib | CORE_THIRD_PARTY | {"textopt"}]
    assert not bad, "the core imports nothing above it: " + "; ".join(sorted(set(bad)))


def test_the_package_front_imports_only_the_core():
    assert textopt_imports("textopt") <= CORE, "textopt/__init__ loads the packages above the core lazily"


def test_core_circles_only_through_methods_that_call_one_step_up():
    graph = {m: {d for d in textopt_imports(m, RUN) if d in CORE and (m, d) not in CORE_LATE_UP} for m in CORE}
    assert circles(graph) == []
    for m, d in CORE_LATE_UP:   # each allowed late import exists, and is late
        assert (d, "late") in imports(m) and (d, "top") not in imports(m), (m, d)


def test_engines_and_kernels_build_on_the_core_only():
    bad = [f"{m} imports {d}" for m in modules() if package(m) in MAY_IMPORT
           for d in textopt_imports(m) if package(d) not in MAY_IMPORT[package(m)] | {package(m), "core"}]
    assert not bad, "; ".join(bad)


def test_the_library_never_imports_the_command_line():
    bad = [f"{m} imports {d}" for m in modules() if package(m) not in FRONT_ENDS
           for d in textopt_imports(m) if package(d) in FRONT_ENDS]
    assert not bad, "; ".join(bad)


def test_no_circle_between_packages():
    graph: dict[str, set[str]] = {}
    for m in modules():
        graph.setdefault(package(m), set()).update(package(d) for d in textopt_imports(m, RUN)
                                                   if package(d) != package(m))
    graph.pop("textopt", None)   # the front (textopt/__init__) may reach every package lazily
    assert circles(graph) == []


def test_no_module_level_circle():
    """Module-level imports, with the parent package each import runs first, form no circle."""
    graph = {}
    for m in modules():
        deps = set()
        for d in textopt_imports(m, ("top",)):
            while d != "textopt" and d != m and not m.startswith(d + "."):
                deps.add(d)
                d = d.rpartition(".")[0]
        graph[m] = deps
    assert circles(graph) == []


def test_no_circle_between_modules():
    """Late imports included, no two modules outside the core need each other (a factory that picks a subclass
    loads it by name, as the engine registry does, or lives above both)."""
    graph = {m: textopt_imports(m, RUN) for m in modules()}
    outside = [sorted(comp) for comp in circles(graph) if not comp <= CORE]
    # the core's own rule is test_core_circles_only_through_methods_that_call_one_step_up
    assert outside == [], f"import circles: {outside}"


def private_imports(source: str, name: str, is_pkg: bool = False) -> list[tuple[str, str]]:
    """(module, name) for every ``from module import _name`` in ``source`` (module ``name``; any depth, any
    kind of import)."""
    package_ = name if is_pkg else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_.split(".")[: len(package_.split(".")) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found += [(mod, a.name) for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
    return found


def test_commands_import_no_private_name_of_another_command():
    assert private_imports("from .optimize import _check_resume\nfrom textopt.commands import x, _y",
                           "textopt.commands.search") == [("textopt.commands.optimize", "_check_resume"),
                                                          ("textopt.commands", "_y")]   # the check sees them
    commands = {m for m in modules() if package(m) == "commands"}
    bad = []
    for m in sorted(commands):
        path, is_pkg = modules()[m]
        bad += [f"{m} imports {n} from {mod}" for mod, n in private_imports(path.read_text(encoding="utf-8"), m,
                                                                             is_pkg)
                if mod == "textopt.commands" or mod.startswith("textopt.commands.")]
    assert not bad, ("a command imports another command's private helper; make it a public function of the "
                     "library (textopt.runs ...) or of commands/common.py: " + "; ".join(bad))


def test_no_circle_between_commands():
    commands = {m for m in modules() if package(m) == "commands"}
    graph = {m: textopt_imports(m) & commands for m in commands}   # every kind of import, late ones too
    assert circles(graph) == [], "the commands import each other in a circle: move the shared piece to the library"


HEAVY = ["textopt.engines", "diskcache", "tenacity", "openai", "anthropic", "networkx", "pydantic", "textopt.nn",
         "torch"]


def test_importing_the_core_loads_no_engine_cache_or_provider():
    code = ("import sys, textopt.variable, textopt.backward, textopt.function, textopt.lazy\n"
            f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    got = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert got.stdout.strip() == ""
    # and the packages above load on first use, with the same names as before
    code = ("import textopt as tx\nassert 'textopt.nn' not in __import__('sys').modules\n"
            "from textopt.nn.pyfunction import function\n"
            "assert tx.function is function and tx.nn.LLMCall and tx.get_engine('scripted') and tx.optim.TGD\n"
            "assert callable(tx.backward_engine) and tx.ImageVariable and tx.graph.to_dot\n"
            "assert set(tx.__all__) <= set(dir(tx))\n")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_text_programs_never_load_torch_and_tensors_work_once_it_is_loaded():
    """torch loads only when the program uses a tensor: its ~150k objects would make every garbage collection of a
    large text graph several times slower (issue 14). A tensor made after textopt was imported is still a tensor."""
    code = ("import sys, textopt as tx, textopt.engines\n"
            "tx.nn.LLMCall, tx.nn.TextLoss, tx.optim.TGD, tx.optim.BeamSearch, tx.graph\n"
            "e = tx.get_engine('scripted')\n"
            "p = tx.Variable('be brief', role='system prompt', requires_grad=True)\n"
            "loss = tx.concat([p, tx.Variable('x')])\n"
            "loss.backward(engine=e)\n"
            "assert 'torch' not in sys.modules, 'a text-only program loaded torch'\n"
            "import torch\n"
            "t = tx.Variable(torch.tensor([1.0, 2.0]), role='weights', requires_grad=True)\n"
            "assert not t.is_text and t.requires_grad\n"
            "(t.value * 3).sum().backward()\n"
            "assert t.grad.tolist() == [3.0, 3.0]\n"
            "from textopt.optim import MixedOptimizer\n"
            "assert MixedOptimizer([t], tensor='sgd', tensor_options={'lr': 0.5})\n")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_a_text_training_run_never_loads_torch(tmp_path):
    """The Trainer too (issue 14): its RNG state is Python's alone while torch is not loaded, and a resume from
    such a checkpoint is exact without it (tests/train/test_properties.py: with torch loaded, torch's too)."""
    code = ("import json, sys\nfrom pathlib import Path\nimport textopt as tx\n"
            "from textopt.train import Trainer\n"
            "from tests.train.toy import data, make_engines\n"
            "def build(out):\n"
            "    fwd, teacher = make_engines()\n"
            "    p = tx.Variable('Solve the sum.', role='system prompt of the solver', requires_grad=True, name='p')\n"
            "    return Trainer(tx.nn.LLMCall(fwd, system_prompt=p), tx.nn.NumberMatch(), tx.optim.TGD([p], "
            "engine=teacher), train=data(6), val=data(2, 20), test=data(2, 40), batch_size=2, steps=2, out_dir=out, "
            "seed=3, backward_engine=teacher, progress=False, plot=False, feedback_from='all', screen=False)\n"
            "out = Path(sys.argv[1])\n"
            "full = build(out / 'full').fit()\n"
            "build(out / 'part').fit(max_steps=1)\n"
            "assert 'torch' not in json.loads((out / 'part' / 'checkpoint.json').read_text())['rng']\n"
            "part = build(out / 'part').resume()\n"
            "assert (part.params, part.test_score) == (full.params, full.test_score)\n"
            "assert (out / 'part' / 'log.jsonl').read_text() == (out / 'full' / 'log.jsonl').read_text()\n"
            "assert 'torch' not in sys.modules, 'a text training run loaded torch'\n")
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, check=True)
