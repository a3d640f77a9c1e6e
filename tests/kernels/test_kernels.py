"""Triton kernels vs torch references over hypothesis-drawn shapes and dtypes (interpreter on CPU, CUDA on GPU)."""
import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

from textopt.errors import KernelError
from textopt.kernels import cosine_topk, cosine_topk_reference, token_logprobs, token_logprobs_reference
from textopt.kernels import reference as R

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
DTYPES = [torch.float32, torch.float16, torch.bfloat16]
TOL = {torch.float32: 2e-5, torch.float16: 2e-3, torch.bfloat16: 2e-2}
FEW = settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
MORE = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


def check_topk(got, q, c, k):
    n = c.shape[0]
    ref_s, _ = cosine_topk_reference(q, c, k)
    full = torch.nn.functional.normalize(q.float(), dim=-1) @ torch.nn.functional.normalize(c.float(), dim=-1).T
    tol = TOL[q.dtype]
    assert got.values.shape == got.indices.shape == (q.shape[0], min(k, n))
    assert got.indices.dtype == torch.int64 and got.values.dtype == torch.float32
    assert torch.allclose(got.values.cpu(), ref_s.cpu(), atol=tol, rtol=0)          # the right scores ...
    at = torch.gather(full, 1, got.indices)                                          # ... at the returned rows
    assert torch.allclose(at.cpu(), got.values.cpu(), atol=tol, rtol=0)
    assert all(len(set(row)) == len(row) for row in got.indices.tolist())           # no row twice
    assert bool((got.values[:, 1:] <= got.values[:, :-1] + 1e-7).all())             # sorted descending


shapes = st.tuples(st.integers(1, 6), st.integers(1, 140), st.integers(1, 70), st.integers(1, 40))


@FEW
@given(shape=shapes, dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**16))
def test_cosine_topk_triton_matches_reference(shape, dtype, seed):
    b, n, d, k = shape
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(b, d, generator=g).to(dtype).to(DEVICE)
    c = torch.randn(n, d, generator=g).to(dtype).to(DEVICE)
    check_topk(cosine_topk(q, c, k, backend="triton"), q, c, k)


def test_kernels_are_interpreted_on_cpu_only_in_this_process():
    from textopt.kernels import kernels_interpreted
    assert kernels_interpreted() == (DEVICE == "cpu")


def test_cosine_topk_triton_many_splits_and_tiles():
    from textopt.kernels.topk_triton import cosine_topk_triton
    g = torch.Generator().manual_seed(1)
    q, c = torch.randn(3, 20, generator=g).to(DEVICE), torch.randn(157, 20, generator=g).to(DEVICE)
    s, i = cosine_topk_triton(q, c, 9, interpret=DEVICE == "cpu", block_n=16, splits=4)
    check_topk(type("T", (), {"values": s, "indices": i})(), q, c, 9)


def test_cosine_topk_ties_prefer_lower_index():
    c = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 0.0], [1.0, 0.0]], device=DEVICE)
    got = cosine_topk(torch.tensor([[3.0, 0.0]], device=DEVICE), c, 3, backend="triton")
    assert got.indices.tolist() == [[0, 2, 3]]


@MORE
@given(shape=shapes, chunk=st.integers(1, 50), seed=st.integers(0, 2**16))
def test_chunked_reference_equals_eager(shape, chunk, seed):
    b, n, d, k = shape
    g = torch.Generator().manual_seed(seed)
    q, c = torch.randn(b, d, generator=g), torch.randn(n, d, generator=g)
    s1, i1 = cosine_topk_reference(q, c, k)
    s2, i2 = cosine_topk_reference(q, c, k, chunk=chunk)
    assert torch.allclose(s1, s2, atol=1e-6) and s2.shape == (b, min(k, n))


def test_cosine_topk_values_are_differentiable_like_torch():
    g = torch.Generator().manual_seed(2)
    q = torch.randn(4, 8, generator=g, requires_grad=True)
    c = torch.randn(30, 8, generator=g)
    got = cosine_topk(q, c, 5)
    got.values.sum().backward()
    q2 = q.detach().clone().requires_grad_()
    full = torch.nn.functional.cosine_similarity(q2[:, None, :], c[None], dim=-1)
    torch.gather(full, 1, got.indices).sum().backward()
    assert torch.allclose(q.grad, q2.grad, atol=1e-6)


def test_one_dimensional_query_and_k_larger_than_n():
    c = torch.randn(3, 4)
    got = cosine_topk(torch.randn(4), c, 10)
    assert got.values.shape == (3,) and sorted(got.indices.tolist()) == [0, 1, 2]


@pytest.mark.parametrize("q, c, k, match", [
    (torch.zeros(0, 4), torch.randn(5, 4), 2, "empty batch"),
    (torch.randn(2, 4), torch.zeros(0, 4), 2, "empty corpus"),
    (torch.randn(2, 4), torch.randn(5, 3), 2, "dimension"),
    (torch.randn(2, 4), torch.randn(5, 4).half(), 2, "cast"),
    (torch.randn(2, 4), torch.randn(5, 4), 0, "k must be"),
    (torch.randn(2, 4).long(), torch.randn(5, 4), 1, "float32"),
    (torch.randn(2, 2, 4), torch.randn(5, 4), 1, r"\(B, d\)"),
])
def test_cosine_topk_errors(q, c, k, match):
    with pytest.raises(KernelError, match=match):
        cosine_topk(q, c, k)


def test_triton_backend_on_cpu_without_interpreter_is_a_clear_error(monkeypatch):
    from textopt.kernels import dispatch
    monkeypatch.setattr(dispatch, "kernels_interpreted", lambda: False)
    with pytest.raises(KernelError, match="TRITON_INTERPRET"):
        cosine_topk(torch.randn(1, 2), torch.randn(3, 2), 1, backend="triton")


lp_shapes = st.tuples(st.integers(1, 3), st.integers(1, 7), st.integers(1, 300))


def _logprob_case(shape, dtype, seed, ignore):
    lead, t, v = shape
    g = torch.Generator().manual_seed(seed)
    x = (3 * torch.randn(lead, t, v, generator=g)).to(dtype).to(DEVICE)
    y = torch.randint(0, v, (lead, t), generator=g).to(DEVICE)
    if ignore:
        y[0, 0] = -100
    w = torch.randn(lead, t, generator=g).to(DEVICE)
    return x, y, w


def _compare_logprobs(x, y, w, **kw):
    x1 = x.detach().clone().requires_grad_()
    got = token_logprobs(x1, y, **kw)
    (got * w).sum().backward()
    x2 = x.detach().clone().requires_grad_()
    ref = token_logprobs_reference(x2, y)
    (ref * w).sum().backward()
    tol = TOL[x.dtype] * 10
    assert got.shape == y.shape and got.dtype == torch.float32
    assert torch.allclose(got, ref, atol=tol, rtol=1e-4)
    assert x1.grad.dtype == x.dtype
    assert torch.allclose(x1.grad.float(), x2.grad.float(), atol=tol, rtol=1e-3)


@FEW
@given(shape=lp_shapes, dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**16), ignore=st.booleans())
def test_token_logprobs_triton_matches_reference(shape, dtype, seed, ignore):
    _compare_logprobs(*_logprob_case(shape, dtype, seed, ignore), backend="triton")


@MORE
@given(shape=lp_shapes, dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**16), ignore=st.booleans())
def test_token_logprobs_torch_path_matches_reference(shape, dtype, seed, ignore):
    _compare_logprobs(*_logprob_case(shape, dtype, seed, ignore), backend="torch")


def test_chunked_torch_path_bounds_rows(monkeypatch):
    monkeypatch.setattr(R, "_rows", lambda t, v, budget=0: 2)   # force several row blocks
    _compare_logprobs(*_logprob_case((1, 7, 50), torch.float32, 0, True), backend="torch")


def test_ignored_positions_get_zero_and_no_gradient():
    x = torch.randn(3, 10, requires_grad=True)
    y = torch.tensor([1, -100, 2])
    lp = token_logprobs(x, y, backend="triton" if DEVICE == "cpu" else "auto")
    lp.sum().backward()
    assert lp[1].item() == 0.0 and bool((x.grad[1] == 0).all())


@pytest.mark.parametrize("x, y, match", [
    (torch.randn(0, 5), torch.zeros(0, dtype=torch.long), "empty batch"),
    (torch.randn(3, 5), torch.zeros(4, dtype=torch.long), "must agree"),
    (torch.randn(3, 5), torch.tensor([0, 5, 1]), r"\[0, 5\)"),
    (torch.randn(3, 5), torch.zeros(3), "int64"),
    (torch.randn(3, 0), torch.zeros(3, dtype=torch.long), "vocabulary"),
])
def test_token_logprobs_errors(x, y, match):
    with pytest.raises(KernelError, match=match):
        token_logprobs(x, y)
