import asyncio

import textopt as tx
from tests.helpers import Mix


def test_no_grad_context_and_decorator():
    p = tx.Variable("p", role="prompt", requires_grad=True)
    with tx.no_grad():
        out = Mix("f", []).forward([p])
        assert out.node is None and not out.requires_grad
        with tx.enable_grad():
            assert Mix("g", []).forward([p]).node is not None
    assert Mix("h", []).forward([p]).node is not None

    @tx.no_grad()
    def f():
        return Mix("k", []).forward([p])

    @tx.no_grad()
    async def g():
        return Mix("k", []).forward([p])

    assert f().node is None
    assert asyncio.run(g()).node is None
    assert tx.is_grad_enabled()


def test_no_grad_output_of_unrequired_inputs_has_no_node():
    x = tx.Variable("x", role="input")
    out = Mix("f", []).forward([x])
    assert out.node is None
