"""The phases of a ``textopt optimize`` run, counted from its settings (see :mod:`textopt.estimate`).

Every prompt is built with the run's own templates and functions (``prompts.fill``, ``nn.llm.step_context``,
``optim.tgd_prompt.build_request``, ``optim.prompts_search``) from the task's real examples; model outputs a
later prompt quotes are stand-ins of their cap's length. The counts mirror ``Trainer._one_step`` (TGD) and
each search optimizer's ``search_step`` as the CLI configures them (:func:`textopt.runs.search_options`).
"""
from __future__ import annotations

import math
from statistics import mean

from ..errors import DataError
from .figures import CHARS_PER_TOKEN, Phase, RunEstimate, engine_info, tokens

# tokens a request adds around its messages' text (role markers, the chat template), by provider: the embedded
# model's template adds ~16 (measured on the demo run), API providers ~8; a scripted engine counts text only
MESSAGE_OVERHEAD = {"local": 16, "scripted": 1}
DEFAULT_OVERHEAD = 8
BACKWARD_TOKENS = 384           # function.py's default cap on a backward answer
AGGREGATE_TOKENS = 1024         # Trainer(aggregate_max_tokens=...) default
SEARCH_DEFAULTS = {"beam": dict(beam_width=2, edits=2, val_minibatch=4), "opro": dict(proposals=4, top_n=8,
                   n_examples=2), "demos": dict(k=3, candidates_per_step=2)}


def _req(chars: float, engine) -> int:
    return tokens(chars) + MESSAGE_OVERHEAD.get(engine.provider, DEFAULT_OVERHEAD)


class _Run:
    """What every phase needs: the task, its splits, the prompt, the engines and the caps."""

    def __init__(self, task, *, engine, backward_engine, optimizer_engine, steps, batch_size, train_size,
                 val_size, test_size, seed, prompt, data, max_new_tokens, feedback_tokens, replay):
        from ..tasks import get_task
        self.task = get_task(task, data) if isinstance(task, str) else task
        self.splits = self.task.splits(train_size, val_size, test_size, seed=seed)
        self.train, self.val, self.test = self.splits.train, self.splits.val, self.splits.test
        if not self.train:
            raise DataError(f"task {self.task.name!r} gave no training example; raise --train-size")
        self.prompt = self.task.initial_prompt if prompt is None else prompt
        route = (lambda s: f"replay:{replay}") if replay else (lambda s: s)
        self.fwd = engine_info(route(engine))
        bwd_spec = backward_engine or engine
        self.bwd = engine_info(route(bwd_spec))
        self.opt = engine_info(route(optimizer_engine or bwd_spec))
        self.steps, self.batch = steps, min(batch_size, len(self.train))
        self.batch_size = batch_size
        self.cap = self.task.max_tokens                   # forward answers
        self.out_chars = self.cap * CHARS_PER_TOKEN       # a forward answer quoted later, at its cap
        from ..optim.local_defaults import LOCAL_FEEDBACK_TOKENS, LOCAL_OPTIMIZER_TOKENS
        self.opt_tokens = max_new_tokens or (LOCAL_OPTIMIZER_TOKENS if self.opt.provider == "local" else 1024)
        self.bwd_tokens = feedback_tokens or (LOCAL_FEEDBACK_TOKENS if self.bwd.provider == "local"
                                              else BACKWARD_TOKENS)
        from ..tasks.prompts import PROMPT_ROLE
        self.role = PROMPT_ROLE.format(task=self.task.description or self.task.name)
        # what the metric says about a wrong answer: the evaluation a failing example's feedback starts from
        self.evaluation = {id(e): self.task.score("?", e.target).explanation for e in self.train}

    def forward(self, name: str, role: str, examples, *, system_extra: int = 0, bound: str = "exact",
                times: float = 1.0, engine=None) -> Phase:
        """``times`` evaluations of each of ``examples`` (a fraction: the mean example, that many calls)."""
        n = int(round(len(examples) * times))
        chars = sum(len(self.prompt) + system_extra + len(e.input) for e in examples) * times
        engine = engine or self.fwd
        overhead = MESSAGE_OVERHEAD.get(engine.provider, DEFAULT_OVERHEAD)
        return Phase(name, role, engine.spec, n, tokens(chars) + n * overhead, n * self.cap,
                     bound)

    def mean_train_chars(self) -> float:
        return mean(len(e.input) for e in self.train)


def plan(task, *, engine: str = "local", backward_engine: str | None = None, optimizer_engine: str | None = None,
         optimizer: str = "tgd", steps: int = 3, batch_size: int = 3, train_size: int | None = None,
         val_size: int | None = None, test_size: int | None = None, seed: int = 0, prompt: str | None = None,
         data=None, max_new_tokens: int | None = None, feedback_tokens: int | None = None,
         feedback_from: str = "failures", screen: bool = True, replay=None, prices: dict | None = None,
         ) -> RunEstimate:
    from ..optim.local_defaults import check_optimizer
    check_optimizer(optimizer)
    if steps < 0 or batch_size < 1:
        raise DataError("steps must be >= 0 and batch_size >= 1")
    run = _Run(task, engine=engine, backward_engine=backward_engine, optimizer_engine=optimizer_engine,
               steps=steps, batch_size=batch_size, train_size=train_size, val_size=val_size, test_size=test_size,
               seed=seed, prompt=prompt, data=data, max_new_tokens=max_new_tokens, feedback_tokens=feedback_tokens,
               replay=replay)
    if optimizer == "tgd":
        phases, notes = _tgd(run, feedback_from, screen)
    else:
        if not run.val:
            raise DataError(f"task {run.task.name!r} gave an empty val split; a search selects on it: raise "
                            f"--val-size")
        phases, notes = _search(run, optimizer)
    phases = [p for p in phases if p.calls or p.repairs]
    engines = {e.spec: e for e in (run.fwd, run.bwd, run.opt)}
    settings = {"task": run.task.name, "optimizer": optimizer, "steps": steps, "batch_size": batch_size,
                "sizes": list(run.splits.sizes()), "engine": run.fwd.spec, "backward_engine": run.bwd.spec,
                "optimizer_engine": run.opt.spec, "forward_max_tokens": run.cap,
                "optimizer_max_tokens": run.opt_tokens, "backward_max_tokens": run.bwd_tokens}
    notes.append("completion tokens are each call's max_tokens cap (an upper bound); prompt tokens are the texts "
                 "as sent at 4 characters a token, quoted model outputs counted at their cap")
    notes.append("calls with a new prompt are sized with the starting prompt: a longer new prompt costs more")
    notes.append("the response cache only lowers these figures: a repeated request is a cache hit, not a call")
    return RunEstimate(phases, engines, prices, notes, settings)


# -- TGD (the Trainer) ---------------------------------------------------------------------------------------
def _tgd(run: _Run, feedback_from: str, screen: bool) -> tuple[list[Phase], list[str]]:
    from ..nn.prompts import AGGREGATE_ITEM, AGGREGATE_ROUTE
    from ..prompts import BACKWARD_LLM, BACKWARD_SYSTEM, fill
    s, b, n_val, n_test = run.steps, run.batch, len(run.val), len(run.test)
    some = "at most" if feedback_from == "failures" else "exact"
    # the batch view every failing example's feedback carries (aggregate), and whether it needs a summary call
    batch_evals = [run.evaluation[id(e)] for e in run.train[:b]]
    items = "\n".join(AGGREGATE_ITEM.format(i=i + 1, text=t) for i, t in enumerate(batch_evals))
    summarised = b > 1 and len(items) > AGGREGATE_TOKENS * CHARS_PER_TOKEN
    own = mean(len(t) for t in run.evaluation.values())
    routed = AGGREGATE_ROUTE.format(i=1, n=b, own="x" * int(own), batch=items[:AGGREGATE_TOKENS * CHARS_PER_TOKEN]) \
        if b > 1 else "x" * int(own)
    out = "x" * run.out_chars
    backward_chars = mean(len(BACKWARD_SYSTEM) + len(fill(
        BACKWARD_LLM, system=run.prompt, input=e.input, output=out, output_role="response of the language model",
        feedback=routed, role=run.role, value=run.prompt)) for e in run.train)
    opt_chars = [_tgd_request_chars(run, routed, step) for step in range(1, s + 1)]
    phases = [
        run.forward("validation: starting prompt", "eval", run.val),
        run.forward("train forward (batch per step)", "forward", run.train, times=s * b / len(run.train)),
        Phase("backward: feedback per example", "backward", run.bwd.spec, s * b, _req(backward_chars, run.bwd) * s * b,
              s * b * run.bwd_tokens, some),
        Phase("backward: batch summary", "backward", run.bwd.spec, s if summarised else 0,
              _req(len(items), run.bwd) * s if summarised else 0, s * AGGREGATE_TOKENS if summarised else 0, "at most"),
        Phase("optimizer: new prompt (TGD)", "optimizer", run.opt.spec, s, sum(_req(c, run.opt) for c in opt_chars),
              s * run.opt_tokens, some, repairs=5 * s,
              note="a repair, then the simpler 'add one instruction' request and its repair, and one retry of it "
                   "with the next tactic and its repair (TGD add_retries=1), when answers fail"),
    ]
    if screen:
        phases.append(run.forward("screen: new prompt on its batch", "eval", run.train, bound="at most",
                                  times=s * b / len(run.train)))
    phases += [
        run.forward("validation: each new prompt", "eval", run.val, bound="at most", times=s),
        run.forward("test: best prompt", "eval", run.test),
        run.forward("test: starting prompt", "eval", run.test),
    ]
    notes = ["TGD steps: a batch that is all correct is skipped (no backward, optimizer or validation); a new "
             "prompt is screened on its batch, then validated only if it scored higher there"
             if screen else "TGD steps: a batch that is all correct is skipped (no backward, optimizer or "
                            "validation)"]
    if feedback_from == "all":
        notes[0] = "TGD steps backpropagate every example (feedback_from='all')"
    notes.append("the test split is scored for the best and the starting prompt: when they are the same, the "
                 "second pass is cache hits")
    return phases, notes


def _tgd_request_chars(run: _Run, routed: str, step: int) -> int:
    """The TGD request of ``step`` built by ``tgd_prompt.build_request`` from stand-in feedback of the caps."""
    from ..optim.local_defaults import LOCAL_TGD
    from ..nn.llm import step_context
    from ..optim.tgd import DEFAULTS
    from ..optim.tgd_prompt import build_request
    from ..variable import Feedback, Variable
    group = {**DEFAULTS, **(LOCAL_TGD if run.opt.provider == "local" else {}), "max_tokens": run.opt_tokens}
    p = Variable(run.prompt, role=run.role, requires_grad=True, name="system_prompt")
    downstream = [Feedback(routed, None, source="metric")]
    for e in run.train[:run.batch]:
        context = step_context(run.prompt, e.input, "x" * run.out_chars, downstream, p)
        p.grad.append(Feedback("x" * (run.bwd_tokens * CHARS_PER_TOKEN), p, source="solver", context=context))
    past = min(step - 1, group["history"])
    window = [{"step": i, "value": run.prompt, "feedback": "x" * group["history_feedback_chars"]}
              for i in range(past)]
    return build_request(p, group, "system_prompt", window, step - 1).prompt_chars()


# -- search optimizers ---------------------------------------------------------------------------------------
def _search(run: _Run, name: str) -> tuple[list[Phase], list[str]]:
    s, m, n_val, n_test = run.steps, run.batch_size, len(run.val), len(run.test)
    opt_calls, opt_chars, train_evals, val_evals, notes = 0, 0, 0.0, 0.0, []
    reflect = _reflect_chars(run, min(m, len(run.train)))
    if name == "beam":
        b, e, v = (SEARCH_DEFAULTS["beam"][k] for k in ("beam_width", "edits", "val_minibatch"))
        v, beam = min(v, n_val), 1
        for _ in range(s):
            train_evals += beam * min(m, len(run.train))
            opt_calls += beam * e
            alive = pool = beam * (1 + e)
            while True:
                val_evals += alive * v
                if alive <= b:
                    break
                alive = max(b, math.ceil(alive / 2))
            val_evals += n_val   # the leader on the whole val split
            beam = min(b, pool)
        opt_chars = opt_calls * _req(reflect, run.opt)
        notes.append(f"beam: width {b}, {e} edits per beam candidate, successive halving on {v} val examples")
    elif name == "pareto":
        train_evals, opt_calls, val_evals = s * 2 * min(m, len(run.train)), s, s * n_val
        opt_chars = s * _req(reflect, run.opt)
        notes.append("pareto: a step whose parent is perfect on its minibatch makes no proposal; a merge step "
                     "(probability 0.2) asks for a merge instead of a mutation")
    elif name == "opro":
        k, top, n_ex = (SEARCH_DEFAULTS["opro"][x] for x in ("proposals", "top_n", "n_examples"))
        score = min(max(m, 1), len(run.train))
        train_evals = score + s * k * score
        opt_calls, val_evals = s * k, s * k * n_val
        opt_chars = sum(k * _req(_opro_chars(run, min(top, 1 + (i * k)), n_ex), run.opt) for i in range(s))
        notes.append(f"opro: {k} proposals a step, each scored on {score} training examples; only those that "
                     f"match the leader there are scored on the val split")
    else:   # demos: no optimizer LLM
        k, per = SEARCH_DEFAULTS["demos"]["k"], SEARCH_DEFAULTS["demos"]["candidates_per_step"]
        train_evals = min(s * m, len(run.train))
        val_evals = s * per * n_val
        demo = k * (mean(len(e.input) for e in run.train) + run.out_chars + 20)
        phases = [run.forward("validation: starting prompt", "eval", run.val),
                  run.forward("bootstrap: traces on train", "eval", run.train, times=train_evals / len(run.train)),
                  run.forward("validation: demo sets", "eval", run.val, system_extra=int(demo), bound="at most",
                              times=s * per),
                  run.forward("test: starting prompt", "eval", run.test),
                  run.forward("test: best prompt", "eval", run.test, system_extra=int(demo), bound="at most")]
        notes.append(f"demos: {per} demo sets of up to {k} demonstrations a step, each scored on the val split")
        return phases, notes
    phases = [run.forward("validation: starting prompt", "eval", run.val),
              run.forward("minibatches on train", "eval", run.train, bound="at most",
                          times=train_evals / len(run.train)),
              Phase(f"optimizer: proposals ({name})", "optimizer", run.opt.spec, opt_calls, opt_chars,
                    opt_calls * run.opt_tokens, "at most", repairs=opt_calls,
                    note="one repair request per unusable proposal"),
              run.forward("validation: candidates", "eval", run.val, bound="at most", times=val_evals / n_val),
              run.forward("test: starting prompt", "eval", run.test),
              run.forward("test: best prompt", "eval", run.test, bound="at most")]
    notes.append("a search evaluates each (candidate, example) once: repeated candidates and examples are free")
    return phases, notes


def _evidence(run: _Run, k: int):
    from ..optim.store import DEFAULT_OBJECTIVE, Evaluation
    return [Evaluation({DEFAULT_OBJECTIVE: 0.0}, {DEFAULT_OBJECTIVE: run.evaluation[id(e)]},
                       {"input": e.input, "output": "x" * run.out_chars}) for e in run.train[:k]]


def _reflect_chars(run: _Run, k: int) -> int:
    from ..optim.newvalue import is_instruction
    from ..optim.prompts_search import (REFLECT_ASK_VALUE, REFLECT_INSTRUCT_PROMPT, REFLECT_INSTRUCT_SYSTEM,
                                       REFLECT_PROMPT, SEARCH_SYSTEM, render_examples, render_objectives)
    from ..optim.store import DEFAULT_OBJECTIVE
    weights = {DEFAULT_OBJECTIVE: 1.0}
    evidence = dict(role=run.role, value=run.prompt, examples=render_examples(_evidence(run, k), weights),
                    objectives=render_objectives(weights))
    if is_instruction(run.role):
        return len(REFLECT_INSTRUCT_SYSTEM) + len(REFLECT_INSTRUCT_PROMPT.format(**evidence))
    return len(SEARCH_SYSTEM) + len(REFLECT_PROMPT.format(**evidence, ask=REFLECT_ASK_VALUE))


def _opro_chars(run: _Run, shown: int, n_examples: int) -> int:
    from ..optim.prompts_search import OPRO_ENTRY, OPRO_PROMPT, OPRO_SYSTEM, render_examples, render_objectives
    from ..optim.store import DEFAULT_OBJECTIVE
    weights = {DEFAULT_OBJECTIVE: 1.0}
    history = "\n".join(OPRO_ENTRY.format(score=0.5, value=run.prompt) for _ in range(shown))
    user = OPRO_PROMPT.format(role=run.role, history=history,
                              examples=render_examples(_evidence(run, n_examples), weights),
                              objectives_short=render_objectives(weights))
    return len(OPRO_SYSTEM) + len(user)
