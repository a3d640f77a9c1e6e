"""textopt.kernels: fused numeric kernels (Triton on CUDA, torch references on CPU).

* ``cosine_topk(queries, corpus, k)`` — top-k cosine similarity without the B x N matrix (retrieval, dedup).
* ``token_logprobs(logits, targets)`` — log-softmax + gather in O(T) extra memory, with a fused backward.

``reference`` holds the torch ground truths; ``benchmarks/kernels.py`` measures both against torch eager.
"""
from .dispatch import (TokenLogProb, TopK, cosine_topk, interpreting, kernels_interpreted, token_logprobs,
                       triton_available)
from .reference import cosine_topk_reference, token_logprobs_reference

__all__ = ["cosine_topk", "token_logprobs", "TokenLogProb", "TopK", "cosine_topk_reference",
           "token_logprobs_reference", "triton_available", "interpreting", "kernels_interpreted"]
