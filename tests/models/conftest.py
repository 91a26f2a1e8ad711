"""Model-test fixtures: a private cache dir and a small offline corpus."""

from __future__ import annotations

from pathlib import Path

import pytest

from models import data


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Tokenizers and token streams go to a per-session cache, never the user's."""
    mp = pytest.MonkeyPatch()
    mp.setenv("CARBS_CACHE_DIR", str(tmp_path_factory.mktemp("carbs_cache")))
    data.load_tokens.cache_clear()
    yield
    data.load_tokens.cache_clear()
    mp.undo()


@pytest.fixture
def small_corpus(tmp_path: Path) -> Path:
    """A directory with a text file and a JSONL file (~60 kB of real stdlib code)."""
    docs = data.load_documents("stdlib", max_bytes=60_000)
    (tmp_path / "code.txt").write_text("\n".join(docs[: len(docs) // 2]))
    import json

    with open(tmp_path / "more.jsonl", "w") as f:
        for doc in docs[len(docs) // 2 :]:
            f.write(json.dumps({"text": doc}) + "\n")
    return tmp_path
