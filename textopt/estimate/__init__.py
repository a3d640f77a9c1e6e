"""A whole run's LLM calls, tokens and dollars, estimated before any call: ``textopt optimize --dry-run``.

    est = textopt.estimate.estimate_optimize("format_count", engine="openai:gpt-4o-mini", steps=3, batch_size=3)
    print(est.table())          # or est.as_dict()

Nothing is called and no engine is built (no API key is needed): the engine specs are read for their provider
and model, the model's price comes from the engines' price table (``engines.usage.DEFAULT_PRICES``; a model it
does not know is "unknown price", never $0), and every prompt is sized from the texts the run would send — the
task's own examples of each split, the starting prompt, and the backward and optimizer request templates
filled as the run fills them (``nn.prompts``, ``optim.tgd_prompt``, ``optim.prompts_search``). Tokens are
counted at 4 characters a token.

What each figure is (``Phase.bound``):
- calls: "exact" where the count follows from the configuration alone (validation and test splits, the
  forward calls of each step); "at most" where the data decides (TGD backpropagates only failing examples;
  screening and validation happen only for a changed prompt; a search evaluates only new candidates, and a
  cache hit or an early stop — ``--patience``, a budget — only lowers it). An optimizer answer that needs its one
  repair request costs one more call: ``Phase.repairs`` holds that worst case.
- completion tokens: each call's ``max_tokens`` cap — an upper bound.
- prompt tokens: the texts as sent; model outputs that later prompts quote (a forward answer inside a backward
  request) are counted at their cap, so these lean high.
"""
from __future__ import annotations

from .figures import CHARS_PER_TOKEN, Phase, RunEstimate, engine_info, tokens  # noqa: F401
from .plan import plan


def estimate_optimize(task, **kw) -> RunEstimate:
    """The estimate of ``textopt optimize`` with these settings (the CLI's option names, as keyword arguments:
    ``engine``, ``backward_engine``, ``optimizer_engine``, ``optimizer``, ``steps``, ``batch_size``,
    ``train_size``, ``val_size``, ``test_size``, ``seed``, ``prompt``, ``data``, ``max_new_tokens``,
    ``feedback_tokens``, ``feedback_from``, ``screen``, ``replay``; ``prices`` as engines take them). ``task``:
    a task name or a ``Task``. Makes no LLM call."""
    return plan(task, **kw)
