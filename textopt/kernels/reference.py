"""Torch references of the kernels (the CPU path of the dispatcher, and the ground truth of the tests).

* ``cosine_topk_reference``: ``normalize(q) @ normalize(c).T`` then ``topk``. With ``chunk`` it walks the corpus in
  blocks and merges a running top-k, so memory is O(B * (chunk + k)) instead of O(B * N).
* ``token_logprobs_reference``: ``log_softmax(logits).gather(targets)`` in eager torch (O(T * V) memory; autograd).
* ``token_logprobs_chunked`` / ``token_logprobs_chunked_backward``: the same maths over row blocks, used by the
  fused autograd Function on CPU (memory O(rows_per_chunk * V) extra, gradient written in place).
"""
from __future__ import annotations

import torch


def cosine_topk_reference(queries: torch.Tensor, corpus: torch.Tensor, k: int, *, chunk: int | None = None,
                          eps: float = 1e-12) -> tuple[torch.Tensor, torch.Tensor]:
    """(scores float32 [B, k'], indices int64 [B, k']) with k' = min(k, N); scores sorted descending."""
    q = torch.nn.functional.normalize(queries.float(), dim=-1, eps=eps)
    n = corpus.shape[0]
    k = min(k, n)
    if chunk is None or chunk >= n:
        c = torch.nn.functional.normalize(corpus.float(), dim=-1, eps=eps)
        return torch.topk(q @ c.T, k, dim=1)
    best_s = q.new_full((q.shape[0], 0), float("-inf"))
    best_i = torch.zeros((q.shape[0], 0), dtype=torch.long, device=q.device)
    for start in range(0, n, chunk):
        c = torch.nn.functional.normalize(corpus[start:start + chunk].float(), dim=-1, eps=eps)
        s = q @ c.T
        idx = torch.arange(start, start + c.shape[0], device=q.device).expand(q.shape[0], -1)
        s, pos = torch.topk(torch.cat([best_s, s], 1), min(k, best_s.shape[1] + s.shape[1]), dim=1)
        best_i = torch.gather(torch.cat([best_i, idx], 1), 1, pos)
        best_s = s
    return best_s, best_i


def token_logprobs_reference(logits: torch.Tensor, targets: torch.Tensor, ignore_index: int = -100) -> torch.Tensor:
    """log p(target_t) per position, float32, 0 where ``targets == ignore_index``."""
    valid = targets != ignore_index
    lp = torch.log_softmax(logits.float(), dim=-1)
    out = lp.gather(-1, torch.where(valid, targets, 0).unsqueeze(-1)).squeeze(-1)
    return torch.where(valid, out, torch.zeros_like(out))


def _rows(t: int, v: int, budget: int = 1 << 22) -> int:
    return max(1, min(t, budget // max(v, 1)))


def token_logprobs_chunked(logits: torch.Tensor, targets: torch.Tensor, ignore_index: int = -100
                           ) -> tuple[torch.Tensor, torch.Tensor]:
    """(log-probs float32 [T], log-sum-exp float32 [T]) for 2-D logits, a block of rows at a time."""
    t, v = logits.shape
    out = torch.empty(t, dtype=torch.float32, device=logits.device)
    lse = torch.empty(t, dtype=torch.float32, device=logits.device)
    step = _rows(t, v)
    for s in range(0, t, step):
        x = logits[s:s + step].float()
        y = targets[s:s + step]
        valid = y != ignore_index
        lse[s:s + step] = torch.logsumexp(x, dim=-1)
        # log_softmax then gather, not x[y] - lse: the rounding of eager torch, so the library's log-probs (the local
        # engine's score) are bitwise those of torch.log_softmax on CPU
        picked = torch.log_softmax(x, dim=-1).gather(-1, torch.where(valid, y, 0).unsqueeze(-1)).squeeze(-1)
        out[s:s + step] = torch.where(valid, picked, torch.zeros_like(picked))
    return out, lse


def token_logprobs_chunked_backward(logits: torch.Tensor, targets: torch.Tensor, lse: torch.Tensor,
                                    grad_out: torch.Tensor, ignore_index: int = -100) -> torch.Tensor:
    """d sum(grad_out * logprobs) / d logits = grad_out * (onehot(target) - softmax(logits)), row block by block."""
    t, v = logits.shape
    grad = torch.empty_like(logits)
    step = _rows(t, v)
    for s in range(0, t, step):
        y = targets[s:s + step]
        valid = y != ignore_index
        g = torch.where(valid, grad_out[s:s + step].float(), torch.zeros_like(grad_out[s:s + step].float()))
        block = -torch.exp(logits[s:s + step].float() - lse[s:s + step, None]) * g[:, None]
        block.scatter_add_(1, torch.where(valid, y, 0).unsqueeze(-1), g.unsqueeze(-1))
        grad[s:s + step] = block.to(grad.dtype)
    return grad
