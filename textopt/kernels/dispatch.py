"""Dispatchers: CUDA tensors -> Triton kernels; CPU tensors -> torch references (chunked, memory-bounded).

``backend``: "auto" (default), "triton" (forces the kernel; on CPU tensors the kernel modules must have been
imported with ``TRITON_INTERPRET=1`` set, which makes triton build interpreted functions — that is how the tests
run the kernels without a GPU, see tests/kernels/conftest.py) or "torch".
"""
from __future__ import annotations

import importlib
import importlib.util
import os
from typing import NamedTuple

import torch

from ..errors import KernelError
from . import reference as R

CPU_CHUNK = 65536


class TopK(NamedTuple):
    values: torch.Tensor   # float32 [B, k'] cosine similarities, descending
    indices: torch.Tensor  # int64 [B, k'] corpus rows


def interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def kernels_interpreted() -> bool:
    """True when the Triton kernels were built by triton's CPU interpreter (TRITON_INTERPRET=1 at their import)."""
    return type(_topk_module()._cosine_topk_kernel).__name__ == "InterpretedFunction"


def triton_available() -> bool:
    return importlib.util.find_spec("triton") is not None


def _use_triton(backend: str, device: torch.device) -> bool:
    if backend not in ("auto", "triton", "torch"):
        raise KernelError(f"backend must be 'auto', 'triton' or 'torch', got {backend!r}")
    if backend == "torch":
        return False
    if backend == "auto":
        return device.type == "cuda" and triton_available()
    if not triton_available():
        raise KernelError("backend='triton' needs the triton package: pip install triton")
    if device.type != "cuda" and not kernels_interpreted():
        raise KernelError("backend='triton' on CPU tensors needs the interpreted kernels: set TRITON_INTERPRET=1 "
                          "before textopt.kernels' Triton modules are first imported (tests do); otherwise use "
                          "backend='auto' / 'torch', or move the tensors to CUDA")
    return True


def _check_float(name: str, t: torch.Tensor) -> None:
    if not isinstance(t, torch.Tensor):
        raise KernelError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise KernelError(f"{name} must be float32, float16 or bfloat16, got {t.dtype}")


def cosine_topk(queries: torch.Tensor, corpus: torch.Tensor, k: int, *, backend: str = "auto",
                eps: float = 1e-12) -> TopK:
    """Top-k corpus rows by cosine similarity for each query: (B, d) x (N, d) -> TopK of shape (B, min(k, N)).

    A 1-D query gives 1-D results. k > N returns all N rows. Scores are float32. When autograd is on and an input
    requires grad, ``values`` are recomputed from the selected rows with torch, so they are differentiable w.r.t.
    queries and corpus (the selection itself is piecewise constant, so this is the exact gradient a.e.)."""
    _check_float("queries", queries)
    _check_float("corpus", corpus)
    single = queries.dim() == 1
    q = queries.unsqueeze(0) if single else queries
    if q.dim() != 2 or corpus.dim() != 2:
        raise KernelError(f"cosine_topk needs queries (B, d) and corpus (N, d), got {tuple(queries.shape)} and "
                          f"{tuple(corpus.shape)}")
    if q.shape[0] == 0:
        raise KernelError("cosine_topk got an empty batch of queries (B = 0); pass at least one query")
    if corpus.shape[0] == 0:
        raise KernelError("cosine_topk got an empty corpus (N = 0); there is nothing to retrieve")
    if q.shape[1] != corpus.shape[1] or q.shape[1] == 0:
        raise KernelError(f"queries have dimension {q.shape[1]} but corpus rows have {corpus.shape[1]}; embed both "
                          "with the same model (and d >= 1)")
    if q.dtype != corpus.dtype:
        raise KernelError(f"queries are {q.dtype} but corpus is {corpus.dtype}; cast one of them (.to(dtype))")
    if q.device != corpus.device:
        raise KernelError(f"queries are on {q.device} but corpus is on {corpus.device}; move them together")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise KernelError(f"k must be an int >= 1, got {k!r}")
    k = min(k, corpus.shape[0])
    with torch.no_grad():
        if _use_triton(backend, q.device) and k <= _topk_module().MAX_K:
            values, indices = _topk_module().cosine_topk_triton(q.detach(), corpus.detach(), k, eps=eps,
                                                                interpret=q.device.type != "cuda")
        else:
            values, indices = R.cosine_topk_reference(q.detach(), corpus.detach(), k, chunk=CPU_CHUNK, eps=eps)
    if torch.is_grad_enabled() and (q.requires_grad or corpus.requires_grad):
        rows = corpus[indices]  # (B, k, d): k rows per query, small
        values = cosine(q.float().unsqueeze(1), rows.float(), eps=eps)
    if single:
        return TopK(values[0], indices[0])
    return TopK(values, indices)


def cosine(a: torch.Tensor, b: torch.Tensor, *, dim: int = -1, eps: float = 1e-8) -> torch.Tensor:
    """Cosine similarity of ``a`` and ``b`` along ``dim`` (broadcast), differentiable, in the inputs' dtype.

    The library's one cosine (the embedding bridge ``EmbeddingSimilarity``, the differentiable scores of
    ``cosine_topk``). One pair per row is a memory-bound reduction: torch's own op on every device (a kernel
    only pays off for many-to-many, which is ``cosine_topk``)."""
    for name, t in (("a", a), ("b", b)):
        if not isinstance(t, torch.Tensor) or not t.is_floating_point():
            raise KernelError(f"cosine needs floating-point tensors; {name} is "
                              f"{getattr(t, 'dtype', type(t).__name__)}")
    try:
        return torch.nn.functional.cosine_similarity(a, b, dim=dim, eps=eps)
    except RuntimeError as exc:
        raise KernelError(f"cosine needs vectors of the same length (embed both with the same model), got shapes "
                          f"{tuple(a.shape)} and {tuple(b.shape)}: {exc}") from None


def _topk_module():
    return importlib.import_module(".topk_triton", __package__)


def _logprob_module():
    return importlib.import_module(".logprob_triton", __package__)


class TokenLogProb(torch.autograd.Function):
    """Fused log-softmax + gather with a memory-light backward (grad w.r.t. logits only)."""

    @staticmethod
    def forward(ctx, logits, targets, ignore_index: int, triton: bool, block_v):
        if triton:
            out, lse = _logprob_module().logprob_forward_triton(logits, targets, ignore_index,
                                                                interpret=logits.device.type != "cuda",
                                                                block_v=block_v)
        else:
            out, lse = R.token_logprobs_chunked(logits, targets, ignore_index)
        ctx.save_for_backward(logits, targets, lse)
        ctx.ignore_index, ctx.triton, ctx.block_v = ignore_index, triton, block_v
        ctx.mark_non_differentiable(lse)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        logits, targets, lse = ctx.saved_tensors
        if ctx.triton:
            grad = _logprob_module().logprob_backward_triton(logits, targets, lse, grad_out, ctx.ignore_index,
                                                             interpret=logits.device.type != "cuda",
                                                             block_v=ctx.block_v)
        else:
            grad = R.token_logprobs_chunked_backward(logits, targets, lse, grad_out, ctx.ignore_index)
        return grad, None, None, None, None


def token_logprobs(logits: torch.Tensor, targets: torch.Tensor, *, ignore_index: int = -100, backend: str = "auto",
                   block_v: int | None = None, check_targets: bool = True) -> torch.Tensor:
    """log p(targets) under softmax(logits): logits (..., V), targets (...) -> float32 (...), differentiable
    w.r.t. logits. Positions whose target is ``ignore_index`` give 0 (and no gradient)."""
    _check_float("logits", logits)
    if not isinstance(targets, torch.Tensor) or targets.dtype not in (torch.int64, torch.int32):
        raise KernelError(f"targets must be an int64 or int32 tensor of token ids, got "
                          f"{getattr(targets, 'dtype', type(targets).__name__)}")
    if logits.dim() < 1 or tuple(logits.shape[:-1]) != tuple(targets.shape):
        raise KernelError(f"logits (..., V) and targets (...) must agree, got {tuple(logits.shape)} and "
                          f"{tuple(targets.shape)}")
    if logits.device != targets.device:
        raise KernelError(f"logits are on {logits.device} but targets on {targets.device}; move them together")
    v = logits.shape[-1]
    if targets.numel() == 0:
        raise KernelError("token_logprobs got an empty batch (no target positions); pass at least one token")
    if v == 0:
        raise KernelError("token_logprobs got a vocabulary of size 0")
    x = logits.reshape(-1, v)
    if x.stride(-1) != 1:
        x = x.contiguous()
    y = targets.reshape(-1).to(torch.int64).contiguous()
    if check_targets and not bool(((y == ignore_index) | ((y >= 0) & (y < v))).all()):
        raise KernelError(f"targets must lie in [0, {v}) or equal ignore_index={ignore_index}")
    use = _use_triton(backend, x.device)
    return TokenLogProb.apply(x, y, int(ignore_index), use, block_v).reshape(targets.shape)
