"""A tiny tokenizer for constrained-decoding tests: no model, a vocabulary we choose (what the local engine's
``VocabTable`` reads from a Hugging Face tokenizer: ids, decoded texts, EOS, special ids)."""
from __future__ import annotations

import random

import pytest

from textopt.errors import TextoptError

# lowercase letters, digits, a space and a few multi-character tokens; no upper case, no punctuation but ".,"
VOCAB = ["<eos>", *"abcdefghijklmnopqrstuvwxyz0123456789 .,", "ab", "the", " the", "12", "yes", "no", "\n"]


class FakeTokenizer:
    eos_token_id = 0
    all_special_ids = [0]

    def __init__(self, vocab: list[str] = VOCAB):
        self.vocab = vocab

    def __len__(self) -> int:
        return len(self.vocab)

    def batch_decode(self, ids, **kw) -> list[str]:
        return ["".join(self.vocab[i] for i in row) for row in ids]

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return [self.vocab.index(ch) for ch in text]


def decode_greedily(constraint, vocab_size: int, max_tokens: int, seed: int = 0) -> list[int]:
    """Drive a constraint like the decode loop does (a random allowed token each step); an empty mask or a
    non-textopt error is a failure of the compile-time checks."""
    rng = random.Random(seed)
    out = []
    for remaining in range(max_tokens, 0, -1):
        if constraint.done:
            break
        mask = constraint.allowed(remaining)
        ids = mask.nonzero().flatten().tolist()
        if not ids:
            pytest.fail("the constraint allowed no token mid-decode")
        tok = rng.choice(ids)
        constraint.advance(tok)
        out.append(tok)
    return out


def only_textopt_errors(fn, *args, **kw):
    """Call ``fn``; a textopt error is fine (returned), anything else fails the test with its type."""
    try:
        return fn(*args, **kw)
    except TextoptError as exc:
        return exc
