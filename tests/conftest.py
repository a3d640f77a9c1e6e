import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Each test gets its own response-cache folder (the converted local model cache stays shared)."""
    monkeypatch.setenv("TEXTOPT_RESPONSE_CACHE_DIR", str(tmp_path / "responses"))
    yield
