"""Triton kernels: fused token log-probability (log-softmax over the vocabulary + gather) and its backward.

Forward: one program per row streams the vocabulary in BLOCK_V chunks with an online max / sum-of-exp (per lane,
reduced at the end), gathers the target logit, and writes two floats per row (log-prob and log-sum-exp): extra
memory O(T), never the T x V log-softmax. Backward: a (T, V / BLOCK_V) grid writes
``grad_logits = g * (onehot(target) - exp(logits - lse))`` straight into the gradient buffer (the only T x V
tensor, the same size as the logits). Rows whose target is ``ignore_index`` give 0 and a zero gradient.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _logprob_fwd_kernel(x_ptr, y_ptr, out_ptr, lse_ptr, V, stride_x, ignore_index, BLOCK_V: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    base = x_ptr + row * stride_x
    m = tl.full([BLOCK_V], float("-inf"), dtype=tl.float32)
    s = tl.zeros([BLOCK_V], dtype=tl.float32)
    for v0 in range(0, V, BLOCK_V):
        cols = v0 + tl.arange(0, BLOCK_V)
        x = tl.load(base + cols, mask=cols < V, other=float("-inf")).to(tl.float32)
        m_new = tl.maximum(m, x)
        live = m_new != float("-inf")
        safe = tl.where(live, m_new, 0.0)  # lanes still at -inf would give -inf - -inf = nan
        s = tl.where(live, s * tl.exp(m - safe) + tl.exp(tl.where(live, x, 0.0) - safe), 0.0)
        m = m_new
    mx = tl.max(m, axis=0)
    total = tl.sum(tl.where(m != float("-inf"), s * tl.exp(tl.where(m != float("-inf"), m, mx) - mx), 0.0), axis=0)
    lse = mx + tl.log(total)
    y = tl.load(y_ptr + row)
    valid = y != ignore_index
    xt = tl.load(base + tl.where(valid, y, 0)).to(tl.float32)
    tl.store(out_ptr + row, tl.where(valid, xt - lse, 0.0))
    tl.store(lse_ptr + row, lse)


@triton.jit
def _logprob_bwd_kernel(x_ptr, y_ptr, lse_ptr, g_ptr, gx_ptr, V, stride_x, stride_gx, ignore_index,
                        BLOCK_V: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.program_id(1) * BLOCK_V + tl.arange(0, BLOCK_V)
    mask = cols < V
    x = tl.load(x_ptr + row * stride_x + cols, mask=mask, other=0.0).to(tl.float32)
    lse = tl.load(lse_ptr + row)
    y = tl.load(y_ptr + row)
    g = tl.where(y != ignore_index, tl.load(g_ptr + row).to(tl.float32), 0.0)
    grad = g * (tl.where(cols == y, 1.0, 0.0) - tl.exp(x - lse))
    tl.store(gx_ptr + row * stride_gx + cols, grad.to(gx_ptr.dtype.element_ty), mask=mask)


def _block(v: int, interpret: bool, block_v: int | None) -> int:
    if block_v:
        return block_v
    return 64 if interpret else min(4096, triton.next_power_of_2(v))


def logprob_forward_triton(logits: torch.Tensor, targets: torch.Tensor, ignore_index: int, *,
                           interpret: bool = False, block_v: int | None = None):
    t, v = logits.shape
    out = torch.empty(t, dtype=torch.float32, device=logits.device)
    lse = torch.empty(t, dtype=torch.float32, device=logits.device)
    bv = _block(v, interpret, block_v)
    _logprob_fwd_kernel[(t,)](logits, targets, out, lse, v, logits.stride(0), ignore_index, BLOCK_V=bv,
                              num_warps=8 if bv >= 2048 else 4)
    return out, lse


def logprob_backward_triton(logits: torch.Tensor, targets: torch.Tensor, lse: torch.Tensor, grad_out: torch.Tensor,
                            ignore_index: int, *, interpret: bool = False, block_v: int | None = None):
    t, v = logits.shape
    grad = torch.empty_like(logits)
    bv = _block(v, interpret, block_v)
    _logprob_bwd_kernel[(t, triton.cdiv(v, bv))](logits, targets, lse, grad_out.contiguous(), grad, v,
                                                 logits.stride(0), grad.stride(0), ignore_index, BLOCK_V=bv,
                                                 num_warps=8 if bv >= 2048 else 4)
    return grad
