"""The local model (spec ``local`` / ``local:PATH``): an in-process Hugging Face / GGUF model behind the Engine
contract.

* ``engine.py`` — ``LocalEngine``: one worker thread, micro-batched decoding, ``score``; ``from_spec``.
* ``model.py`` — where the weights come from (the bundled model, a GGUF file, a folder) and the converted cache.
* ``generate.py`` — the batched decode loop, and per-token log-probabilities of a given continuation.
* ``vocab.py``, ``constrain.py``, ``constrain_json.py``, ``constrain_schema.py`` — token-level constrained
  decoding (regular patterns, JSON schemas).
"""
from .engine import LocalEngine, from_spec

__all__ = ["LocalEngine", "from_spec"]
