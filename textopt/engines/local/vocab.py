"""The local engine's vocabulary as constrained decoding sees it: each token's decoded text, a text -> id map,
a character trie and per-token JSON string tables (shared by patterns, ``constrain.py``, and JSON schemas,
``constrain_json.py`` / ``constrain_schema.py``)."""
from __future__ import annotations

import re
import threading

import torch


class VocabTable:
    """Decoded text of every token, a text -> id map, a character trie (lazy) and per-token JSON tables."""

    def __init__(self, tokenizer, size: int):
        self.size = size
        self.eos_id = tokenizer.eos_token_id
        special = set(tokenizer.all_special_ids)
        texts = tokenizer.batch_decode([[i] for i in range(len(tokenizer))], skip_special_tokens=False,
                                       clean_up_tokenization_spaces=False)
        self.texts: list[str | None] = [None] * size
        self.tok2id: dict[str, int] = {}
        for i, t in enumerate(texts[:size]):
            if i in special or not t or "\ufffd" in t:
                continue
            self.texts[i] = t
            self.tok2id.setdefault(t, i)
        self._tokenizer = tokenizer
        self._trie: dict | None = None
        self._chars: frozenset[str] | None = None
        self._lock = threading.Lock()
        self._encoded: dict[str, list[int]] = {}
        content = torch.full((size,), -1, dtype=torch.int32)
        self.quoted: list[tuple[int, int, str, bool]] = []  # (id, length before the quote, text after it, weak)
        for i, t in enumerate(self.texts):
            if t is None:
                continue
            if _JSON_CONTENT.fullmatch(t):
                content[i] = _json_len(t)
                continue
            m = _CLOSING.fullmatch(t)
            if m:  # weak: a bare quote or one after a space looks like an opening quotation mark
                head, tail = m.group(1), m.group(2)
                self.quoted.append((i, _json_len(head), tail, not tail and (not head or head[-1].isspace())))
        self.content_len = content
        self._closers: dict = {}

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` alone (no special tokens), cached."""
        ids = self._encoded.get(text)
        if ids is None:
            ids = self._tokenizer.encode(text, add_special_tokens=False) if text else []
            self._encoded[text] = ids
        return ids

    def empty_mask(self) -> torch.Tensor:
        return torch.zeros(self.size, dtype=torch.bool)

    @property
    def chars(self) -> frozenset[str]:
        """Every character some token's text contains."""
        if self._chars is None:
            self._chars = frozenset("".join(t for t in self.texts if t))
        return self._chars

    @property
    def trie(self) -> dict:
        with self._lock:
            if self._trie is None:
                root: dict = {}
                for i, t in enumerate(self.texts):
                    if t is None:
                        continue
                    node = root
                    for ch in t:
                        node = node.setdefault(ch, {})
                    node.setdefault(None, []).append(i)
                self._trie = root
            return self._trie


# Text that may stand inside a JSON string: plain characters and whole escapes (a token never ends mid-escape).
_JSON_CONTENT = re.compile(r'(?:[^"\\\x00-\x1f]|\\["\\/bfnrt])+')


_CLOSING = re.compile(r'((?:[^"\\\x00-\x1f]|\\["\\/bfnrt])*)"(.*)', re.S)


def _json_len(t: str) -> int:
    """Characters of the decoded string (an escape counts as one), as JSON schema's min/maxLength count them."""
    return len(t) - len(re.findall(r'\\["\\/bfnrt]', t))
