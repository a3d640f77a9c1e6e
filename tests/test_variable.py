import pytest
import torch

import textopt as tx
from textopt.errors import InvalidVariableError, TextoptError


def test_defaults_and_repr():
    x = tx.Variable("What is 2+2?", role="question to the solver")
    assert x.requires_grad is False and x.grad == [] and x.is_leaf
    p = tx.Variable("Answer briefly.", role="system prompt", requires_grad=True)
    assert p.requires_grad and "requires_grad=True" in repr(p)


@pytest.mark.parametrize("value", [3, 2.5, None, ["a"], {"a": 1}, b"bytes"])
def test_bad_value_type(value):
    with pytest.raises(InvalidVariableError, match="str or a torch.Tensor"):
        tx.Variable(value, role="r")


def test_grad_text_needs_role():
    with pytest.raises(InvalidVariableError, match="needs a role"):
        tx.Variable("x", requires_grad=True)
    with pytest.raises(InvalidVariableError, match="needs a role"):
        tx.Variable("x", role="   ", requires_grad=True)


def test_role_must_be_str():
    with pytest.raises(InvalidVariableError, match="role must be a string"):
        tx.Variable("x", role=3)


def test_errors_are_textopt_errors():
    with pytest.raises(TextoptError):
        tx.Variable(1)


def test_tensor_variable_uses_torch_grad():
    w = tx.Variable(torch.tensor([1.0, 2.0]), role="weights", requires_grad=True)
    assert w.value.requires_grad
    (w.value * 3).sum().backward()
    assert torch.equal(w.grad, torch.tensor([3.0, 3.0]))
    w.zero_grad()
    assert w.grad is None


def test_int_tensor_cannot_require_grad():
    with pytest.raises(InvalidVariableError, match="floating-point"):
        tx.Variable(torch.tensor([1, 2]), role="ids", requires_grad=True)


def test_value_assignment_keeps_kind():
    p = tx.Variable("a", role="r", requires_grad=True)
    with pytest.raises(InvalidVariableError):
        p.value = 3
    p.value = "b"
    assert p.value == "b"


def test_feedback_fast_constructor_builds_what_init_builds():
    from textopt.variable import Feedback, Variable
    target = Variable("x", role="answer", requires_grad=True)
    conv = (("system", "s"), ("user", "u"), ("assistant", "a"))
    slow = Feedback("fix it", target, conversation=conv, source="n")
    fast = Feedback._make("fix it", target, conv, "n")
    slots = [s for cls in Feedback.__mro__ for s in getattr(cls, "__slots__", ()) if s not in ("__weakref__", "index")]
    assert {s: getattr(fast, s) for s in slots} == {s: getattr(slow, s) for s in slots}
    assert fast.index > slow.index and fast.conversation == slow.conversation and fast.grad == []


def test_the_fast_text_constructor_builds_what_init_builds():
    from textopt.variable import Variable
    slow = Variable("an answer", role="response of the language model")
    fast = Variable._text("an answer", "response of the language model")
    slots = [s for s in Variable.__slots__ if s not in ("__weakref__", "index")]
    assert {s: getattr(fast, s) for s in slots} == {s: getattr(slow, s) for s in slots}
    assert type(fast) is Variable and fast.index > slow.index and fast.grad == [] and fast.meta == {}
