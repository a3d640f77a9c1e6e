"""``tx.nn.DemoCall``: an LLMCall whose learnable ``demos`` are appended to its system prompt (what
``DemoBootstrap`` learns; ``textopt optimize --optimizer demos`` uses it)."""
import textopt as tx
from textopt.engines import ScriptedEngine
from textopt.nn.demos import compose_system
from textopt.nn.prompts import DEMOS_HEADER


def test_demos_are_appended_to_the_system_prompt_and_are_a_parameter():
    engine = ScriptedEngine("Answer: 3")
    call = tx.nn.DemoCall(engine, system_prompt=tx.Variable("Count.", role="system prompt", requires_grad=True))
    assert dict(call.named_parameters()).keys() == {"system_prompt", "demos"}
    assert call.demos.requires_grad and call.demos.value == ""
    with tx.no_grad():
        call("How many?")
    assert engine.requests[-1].system == "Count."   # no demos: the plain LLMCall's request
    call.demos.value = "Input: a b\nAnswer: 2"
    with tx.no_grad():
        call("How many?")
    assert engine.requests[-1].system == f"Count.\n\n{DEMOS_HEADER}\n\nInput: a b\nAnswer: 2"
    assert compose_system("Count.", "  ") == "Count."


def test_from_call_keeps_the_calls_prompt_settings_and_backward_cap():
    fwd, bwd = ScriptedEngine("The answer is 7."), ScriptedEngine("fb")
    p = tx.Variable("Answer briefly.", role="system prompt", requires_grad=True)
    base = tx.nn.LLMCall(fwd, system_prompt=p, max_tokens=33, name="solver", backward_max_tokens=77)
    call = tx.nn.DemoCall.from_call(base, demos="Input: x\nAnswer: 1")
    assert call.system_prompt is p and call.max_tokens == 33 and call.node_name == "solver"
    y = call("How many?")
    assert fwd.requests[-1].max_tokens == 33 and "Input: x" in fwd.requests[-1].system
    tx.nn.NumberMatch()(y, 8).backward(engine=bwd)
    assert bwd.requests and all(r.max_tokens == 77 for r in bwd.requests)   # the call's backward cap
    assert p.grad
