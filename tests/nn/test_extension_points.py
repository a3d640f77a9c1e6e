"""The public override points of a call: ``LLMCall.forward_request`` (the forward request) and
``LLMCallFn.backward_target`` (the feedback for one input), and ``current_backward_engine()`` (what a
``with backward_engine(...)`` block set)."""
import textopt as tx
from textopt.engines import ScriptedEngine, current_backward_engine
from textopt.nn.llm import LLMCallFn


class ShoutingCall(tx.nn.LLMCall):
    def forward_request(self, x, role):
        request = super().forward_request(x, role)
        return request.with_meta(node="shouting")


class FixedFeedbackFn(LLMCallFn):
    async def backward_target(self, ctx, node, feedback, target):
        return f"fixed feedback for {target.role}"


def test_a_subclass_changes_the_forward_request():
    engine = ScriptedEngine("answer")
    call = ShoutingCall(engine, tx.Variable("be brief", role="system prompt", requires_grad=True))
    out = call(tx.Variable("question", role="question"))
    assert out.value == "answer"
    assert [r.node for r in engine.requests] == ["shouting"]


def test_a_subclass_gives_its_own_feedback_per_input_with_no_backward_call():
    forward, backward = ScriptedEngine("answer"), ScriptedEngine("criticism")
    prompt = tx.Variable("be brief", role="system prompt", requires_grad=True)
    call = tx.nn.LLMCall(forward, prompt)
    call.fn = FixedFeedbackFn()
    call(tx.Variable("question", role="question")).backward(engine=backward)
    assert [f.value for f in prompt.grad] == ["fixed feedback for system prompt"]
    assert backward.requests == []


def test_current_backward_engine_is_what_the_block_set():
    engine = ScriptedEngine("x")
    assert current_backward_engine() is None
    with tx.backward_engine(engine):
        assert current_backward_engine() is engine
    assert current_backward_engine() is None


def test_an_optimizer_subclass_saves_its_own_state_through_the_public_pair(tmp_path):
    """get_extra_state / set_extra_state (torch.nn.Module's names) are what a subclass overrides to carry
    optimizer-wide state: state_dict and checkpoints hold it, and a malformed one is one CheckpointError that
    leaves the optimizer as it was."""
    import pytest
    from textopt.errors import CheckpointError
    from textopt.optim import load_checkpoint, save_checkpoint

    class Counting(tx.optim.Optimizer):
        def __init__(self, params):
            super().__init__(params, {})
            self.steps = 0

        async def astep(self):
            self.steps += 1

        def get_extra_state(self) -> dict:
            return {"steps": self.steps}

        def set_extra_state(self, extra: dict) -> None:
            if type(extra["steps"]) is not int:
                raise TypeError("steps must be an int")
            self.steps = extra["steps"]

    p = tx.Variable("Answer.", role="system prompt", requires_grad=True)
    opt = Counting([p])
    opt.step()
    opt.step()
    save_checkpoint(opt, tmp_path / "ck.json")
    other = Counting([tx.Variable("x", role="system prompt", requires_grad=True)])
    load_checkpoint(other, tmp_path / "ck.json")
    assert other.steps == 2 and other.params()[0].value == "Answer."
    with pytest.raises(CheckpointError, match="steps must be an int"):
        other.load_state_dict({**opt.state_dict(), "values": ["changed"], "extra": {"steps": "2"}})
    assert other.steps == 2 and other.params()[0].value == "Answer."
