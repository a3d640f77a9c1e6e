"""Triton kernel: fused cosine-similarity top-k without materialising the B x N score matrix.

Grid: (query blocks, corpus splits). Each program loads a block of queries and walks its slice of the corpus in
tiles of BLOCK_N rows: one ``tl.dot`` over d (in BLOCK_D steps) gives the raw dot products while the same loads
give the corpus rows' squared norms, so no normalised copy of the corpus is ever written. Scores are packed with
their row index into one int64 key (order-preserving float bits << 32 | (2^31 - 1 - index)), so "larger key" means
"higher score, then lower index". A running top-K of keys per query lives in registers: for each tile only the
keys above the current K-th best are inserted (at most K max-extractions, usually none once warm). Each program
writes its K candidates; the host merges B x splits x K candidates with ``torch.topk`` (KBs, not B x N floats).

Under ``TRITON_INTERPRET=1`` (set before triton is imported) the same kernel runs on CPU tensors for testing.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

MIN_KEY = tl.constexpr(-9223372036854775808)  # jit'ed code may only read constexpr globals
MAX_K = 128


@triton.jit
def _cosine_topk_kernel(q_ptr, c_ptr, out_ptr, B, N, D, stride_q, stride_c, n_per_split, eps,
                        K: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
                        PRECISION: tl.constexpr, UPCAST: tl.constexpr):
    pid_b = tl.program_id(0)
    pid_s = tl.program_id(1)
    n_splits = tl.num_programs(1)
    rb = pid_b * BLOCK_B + tl.arange(0, BLOCK_B)
    mb = rb < B
    rk = tl.arange(0, K)
    qss = tl.zeros([BLOCK_B], dtype=tl.float32)
    for d0 in range(0, D, BLOCK_D):
        rd = d0 + tl.arange(0, BLOCK_D)
        q = tl.load(q_ptr + rb[:, None].to(tl.int64) * stride_q + rd[None, :],
                    mask=mb[:, None] & (rd[None, :] < D), other=0.0).to(tl.float32)
        qss += tl.sum(q * q, axis=1)
    q_inv = tl.div_rn(1.0, tl.maximum(tl.sqrt_rn(qss), eps))  # correctly rounded (GPU sqrt/div are approximate)
    best = tl.full([BLOCK_B, K], MIN_KEY, dtype=tl.int64)
    start = pid_s * n_per_split
    end = tl.minimum(start + n_per_split, N)
    for n0 in range(start, end, BLOCK_N):
        rn = n0 + tl.arange(0, BLOCK_N)
        mn = rn < end
        acc = tl.zeros([BLOCK_B, BLOCK_N], dtype=tl.float32)
        css = tl.zeros([BLOCK_N], dtype=tl.float32)
        for d0 in range(0, D, BLOCK_D):
            rd = d0 + tl.arange(0, BLOCK_D)
            md = rd < D
            q = tl.load(q_ptr + rb[:, None].to(tl.int64) * stride_q + rd[None, :],
                        mask=mb[:, None] & md[None, :], other=0.0)
            c = tl.load(c_ptr + rn[:, None].to(tl.int64) * stride_c + rd[None, :],
                        mask=mn[:, None] & md[None, :], other=0.0)
            if UPCAST:  # the CPU interpreter's dot mishandles bfloat16; GPUs use the bf16 tensor cores
                acc = tl.dot(q.to(tl.float32), tl.trans(c.to(tl.float32)), acc, input_precision="ieee")
            else:
                acc = tl.dot(q, tl.trans(c), acc, input_precision=PRECISION)
            cf = c.to(tl.float32)
            css += tl.sum(cf * cf, axis=1)
        c_inv = tl.div_rn(1.0, tl.maximum(tl.sqrt_rn(css), eps))
        s = acc * q_inv[:, None] * c_inv[None, :]
        bits = s.to(tl.int32, bitcast=True)
        ordered = tl.where(bits >= 0, bits, bits ^ 0x7FFFFFFF)
        key = (ordered.to(tl.int64) << 32) | (2147483647 - rn[None, :]).to(tl.int64)
        key = tl.where(mn[None, :], key, MIN_KEY)
        kth = tl.min(best, axis=1)
        n_iter = tl.minimum(tl.max(tl.sum((key > kth[:, None]).to(tl.int32), axis=1), axis=0), K)
        for _ in range(n_iter):
            m = tl.max(key, axis=1)
            kth = tl.min(best, axis=1)
            pos = tl.argmin(best, axis=1)
            hit = (rk[None, :] == pos[:, None]) & (m > kth)[:, None]
            best = tl.where(hit, m[:, None], best)
            key = tl.where(key == m[:, None], MIN_KEY, key)
    out = out_ptr + rb[:, None].to(tl.int64) * (n_splits * K) + pid_s * K + rk[None, :]
    tl.store(out, best, mask=mb[:, None])


def decode(keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """int64 keys -> (float32 scores, int64 indices)."""
    ordered = (keys >> 32).to(torch.int32)
    bits = torch.where(ordered >= 0, ordered, ordered ^ 0x7FFFFFFF)
    return bits.view(torch.float32), 2147483647 - (keys & 0xFFFFFFFF)


def cosine_topk_triton(queries: torch.Tensor, corpus: torch.Tensor, k: int, *, eps: float = 1e-12,
                       interpret: bool = False, block_n: int | None = None, splits: int | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs already validated by the dispatcher: 2-D, same dtype/device, B, N >= 1, 1 <= k <= MAX_K."""
    q = queries.contiguous()
    c = corpus.contiguous()
    b, d = q.shape
    n = c.shape[0]
    k_eff = min(k, n)
    big_k = max(16, triton.next_power_of_2(k))
    block_b = 16 if b <= 16 or interpret or big_k >= 64 else (32 if b <= 32 else 64)  # big K: fewer rows/regs
    block_n = block_n or (32 if interpret else 128)
    block_d = 32 if interpret else 64
    nb = triton.cdiv(b, block_b)
    if splits is None:
        programs = 2 if interpret else 4 * torch.cuda.get_device_properties(q.device).multi_processor_count
        splits = max(1, min(programs // nb, triton.cdiv(n, block_n)))
    per_split = triton.cdiv(triton.cdiv(n, splits), block_n) * block_n
    splits = triton.cdiv(n, per_split)
    out = torch.empty((b, splits, big_k), dtype=torch.int64, device=q.device)
    precision = "ieee" if q.dtype == torch.float32 else None
    _cosine_topk_kernel[(nb, splits)](q, c, out, b, n, d, q.stride(0), c.stride(0), per_split, eps,
                                      K=big_k, BLOCK_B=block_b, BLOCK_N=block_n, BLOCK_D=block_d,
                                      PRECISION=precision, UPCAST=interpret and q.dtype == torch.bfloat16,
                                      num_warps=4 if block_b <= 32 else 8)
    keys = torch.topk(out.view(b, splits * big_k), k_eff, dim=1).values
    return decode(keys)
