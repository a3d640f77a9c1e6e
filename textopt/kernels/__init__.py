"""textopt.kernels: fused numeric kernels (Triton on CUDA, torch references on CPU).

* ``cosine_topk(queries, corpus, k)`` — top-k cosine similarity without the B x N matrix (retrieval, dedup).
* ``token_logprobs(logits, targets)`` — log-softmax + gather in O(T) extra memory, with a fused backward.
* ``cosine(a, b)`` — the pairwise cosine (torch's op).

The library computes through these: the local engine's ``score`` (token log-probabilities) and the embedding
bridge (``textopt.numeric.EmbeddingSimilarity``, cosine).

``reference`` holds the torch ground truths; ``benchmarks/kernels.py`` measures both against torch eager.
"""
from .dispatch import (TokenLogProb, TopK, cosine, cosine_topk, interpreting, kernels_interpreted, token_logprobs,
                       triton_available)
from .reference import cosine_topk_reference, token_logprobs_reference

__all__ = ["cosine", "cosine_topk", "token_logprobs", "TokenLogProb", "TopK", "cosine_topk_reference",
           "token_logprobs_reference", "triton_available", "interpreting", "kernels_interpreted"]
