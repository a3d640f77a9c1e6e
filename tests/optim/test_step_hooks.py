"""Step hooks come with every optimizer, as in torch: through step() and through `await opt.astep()`, once per
step, also when a subclass overrides astep and calls super()."""
import asyncio

import textopt as tx
from textopt.engines import ScriptedEngine
from textopt.optim import TGD


def make(cls=TGD):
    p = tx.Variable("Answer.", role="system prompt", requires_grad=True, name="p")
    p._extend_grad([tx.Feedback("be precise", p)])
    opt = cls([p], engine=ScriptedEngine(lambda r: "<NEW_VALUE>Answer precisely.</NEW_VALUE>"))
    calls = []
    opt.register_step_pre_hook(lambda o: calls.append("pre"))
    opt.register_step_post_hook(lambda o, result: calls.append(("post", dict(result))))
    return p, opt, calls


def test_hooks_run_around_astep_and_step():
    p, opt, calls = make()
    asyncio.run(opt.astep())
    assert calls == ["pre", ("post", {"p": "Answer precisely."})]
    p._extend_grad([tx.Feedback("shorter", p)])
    opt.step()
    assert [c if c == "pre" else c[0] for c in calls] == ["pre", "post", "pre", "post"]


def test_an_override_calling_super_runs_the_hooks_once():
    class Logged(TGD):
        async def astep(self):
            self.seen = True
            return await super().astep()

    _, opt, calls = make(Logged)
    asyncio.run(opt.astep())
    assert opt.seen and calls[0] == "pre" and len(calls) == 2


def test_removing_a_hook():
    p, opt, calls = make()
    remove = opt.register_step_pre_hook(lambda o: calls.append("extra"))
    remove()
    opt.step()
    assert "extra" not in calls
