"""``HashingEmbedder``: a deterministic, dependency-free text embedding (character n-grams + word hashing).

Good enough for offline examples and tests of retrieval (lexical overlap -> cosine similarity); a real model's
embeddings plug into the same places (any ``str -> 1-D tensor`` callable)."""
from __future__ import annotations

import hashlib
import re

import torch

from ..checks import expect_int
from ..errors import InvalidVariableError


class HashingEmbedder:
    def __init__(self, dim: int = 256, ngram: int = 3):
        expect_int(dim, "HashingEmbedder dim", lo=1, error=InvalidVariableError)
        expect_int(ngram, "HashingEmbedder ngram", lo=1, error=InvalidVariableError)
        self.dim, self.ngram = dim, ngram

    def _bucket(self, token: str) -> tuple[int, float]:
        h = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "little")
        return h % self.dim, 1.0 if (h >> 40) & 1 else -1.0

    def __call__(self, text: str) -> torch.Tensor:
        v = torch.zeros(self.dim)
        for word in re.findall(r"\w+", text.lower()):
            i, s = self._bucket("w:" + word)
            v[i] += 2.0 * s
            padded = f"#{word}#"
            for j in range(max(1, len(padded) - self.ngram + 1)):
                i, s = self._bucket(padded[j:j + self.ngram])
                v[i] += s
        return torch.nn.functional.normalize(v, dim=0)

    def many(self, texts) -> torch.Tensor:
        return torch.stack([self(t) for t in texts]) if texts else torch.zeros(0, self.dim)
