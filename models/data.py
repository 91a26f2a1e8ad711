"""Training data: a corpus (bundled stdlib sources or user files), a cached BPE tokenizer,
a cached token stream, a fixed held-out split and a batch sampler.

Why caches keyed by content: every trial of a sweep needs the same tokens; training the tokenizer
once per corpus (seconds) and reusing it across trials and processes keeps tiny trials tiny.
The corpus fingerprint is reported with each trial so only runs on identical data are compared.
Cache files are written to a temporary name and renamed, so two processes building the same
entry at once both end with a complete file.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sysconfig
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from carbs.errors import ConfigFailure

DEFAULT_CORPUS = "stdlib"
DEFAULT_MAX_BYTES = 4_000_000
TEXT_SUFFIXES = (".txt", ".md", ".rst", ".py", ".jsonl")
EOS = "<|endoftext|>"
TOKENIZER_VERSION = "bytelevel-bpe-v1"
VAL_FRACTION = 0.05
# Tests, third-party packages and generated code-page tables (encodings/) are not typical code.
_SKIP_DIRS = {"test", "tests", "site-packages", "__pycache__", "idlelib", "turtledemo", "encodings"}


def cache_dir() -> Path:
    """Cache root: $CARBS_CACHE_DIR, else ~/.cache/carbs."""
    root = os.environ.get("CARBS_CACHE_DIR") or os.path.join(Path.home(), ".cache", "carbs")
    return Path(root)


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _stdlib_files() -> list[Path]:
    root = Path(sysconfig.get_paths()["stdlib"])
    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in _SKIP_DIRS]  # prune, never descend
        files.extend(Path(dirpath, f) for f in filenames if f.endswith(".py"))
    return _shuffled(files, root)


def _shuffled(files: list[Path], root: Path) -> list[Path]:
    """Deterministic order that mixes directories (sorted by a hash of the relative path), so a
    size cap and the held-out tail both sample the whole tree rather than its last folders."""

    def key(p: Path) -> str:
        return hashlib.sha1(p.relative_to(root).as_posix().encode()).hexdigest()

    return sorted(files, key=key)


def _user_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        files = [p for p in path.rglob("*") if p.is_file() and p.suffix in TEXT_SUFFIXES]
        return _shuffled(files, path)
    raise ConfigFailure(
        f"corpus={str(path)!r} is neither 'stdlib' nor an existing file or directory",
        reason="invalid",
    )


def _read_documents(path: Path) -> Iterator[str]:
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix != ".jsonl":
        yield text
        return
    for line in text.splitlines():
        if line.strip():
            record = json.loads(line)
            yield record["text"] if isinstance(record, dict) else str(record)


def load_documents(corpus: str = DEFAULT_CORPUS, max_bytes: int = DEFAULT_MAX_BYTES) -> list[str]:
    """Documents of a corpus in a deterministic order, truncated to about `max_bytes` of UTF-8.

    `corpus` is "stdlib" (the running interpreter's standard library, tests excluded) or a path
    to a text/JSONL file or a directory of them (JSONL records use their "text" field).
    """
    files = _stdlib_files() if corpus == DEFAULT_CORPUS else _user_files(Path(corpus))
    docs: list[str] = []
    size = 0
    for path in files:
        for doc in _read_documents(path):
            take = doc.encode("utf-8")[: max_bytes - size].decode("utf-8", errors="ignore")
            docs.append(take)
            size += len(take.encode("utf-8"))
            if size >= max_bytes:
                return docs
    if not docs:
        raise ConfigFailure(f"corpus={corpus!r} contains no text", reason="invalid")
    return docs


def fingerprint(docs: list[str]) -> str:
    """sha256 over the documents (with boundaries), the identity of the data."""
    h = hashlib.sha256()
    for doc in docs:
        data = doc.encode("utf-8")
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def train_tokenizer(docs: list[str], vocab_size: int):  # -> tokenizers.Tokenizer
    """Byte-level BPE (GPT-2 style) with EOS as token 0; deterministic for the same input."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(docs, trainer=trainer)
    return tok


def get_tokenizer(docs: list[str], vocab_size: int, corpus_hash: str | None = None):
    """Tokenizer for this corpus and vocabulary, from the cache or trained and cached."""
    from tokenizers import Tokenizer

    corpus_hash = corpus_hash or fingerprint(docs)
    path = cache_dir() / "tokenizers" / f"{TOKENIZER_VERSION}-{corpus_hash[:16]}-{vocab_size}.json"
    if path.exists():
        return Tokenizer.from_file(str(path))
    tok = train_tokenizer(docs, vocab_size)
    _atomic_write(path, tok.to_str().encode("utf-8"))
    return tok


@dataclass(frozen=True)
class TokenData:
    """A tokenized corpus split into train and a fixed held-out tail."""

    train: torch.Tensor  # (N_train,) int64
    val: torch.Tensor  # (N_val,) int64
    fingerprint: str
    vocab_size: int  # of the tokenizer (<= the model's)


def _tokenize(docs: list[str], tok) -> np.ndarray:
    eos = tok.token_to_id(EOS)
    ids: list[int] = []
    for enc in tok.encode_batch(docs):
        ids.extend(enc.ids)
        ids.append(eos)
    return np.asarray(ids, dtype=np.int32)


@functools.lru_cache(maxsize=4)
def load_tokens(
    corpus: str = DEFAULT_CORPUS, vocab_size: int = 4096, max_bytes: int = DEFAULT_MAX_BYTES
) -> TokenData:
    """Token stream of a corpus, cached on disk (by corpus hash and vocab) and per process.

    The held-out split is the final VAL_FRACTION of the stream: fixed for a given corpus, so all
    trials on it are evaluated on the same tokens.
    """
    docs = load_documents(corpus, max_bytes)
    corpus_hash = fingerprint(docs)
    path = cache_dir() / "tokens" / f"{TOKENIZER_VERSION}-{corpus_hash[:16]}-{vocab_size}.npy"
    tok = get_tokenizer(docs, vocab_size, corpus_hash)
    if path.exists():
        ids = np.load(path)
    else:
        ids = _tokenize(docs, tok)
        with tempfile.TemporaryFile() as buf:
            np.save(buf, ids)
            buf.seek(0)
            _atomic_write(path, buf.read())
    n_val = max(int(len(ids) * VAL_FRACTION), 2)
    stream = torch.from_numpy(ids.astype(np.int64))
    return TokenData(
        train=stream[:-n_val],
        val=stream[-n_val:],
        fingerprint=corpus_hash,
        vocab_size=tok.get_vocab_size(),
    )


def sample_batch(
    tokens: torch.Tensor, batch_size: int, seq_len: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random windows: inputs (B, S) and next-token targets (B, S)."""
    if len(tokens) < seq_len + 2:
        raise ConfigFailure(
            f"seq_len={seq_len} is longer than the training split ({len(tokens)} tokens); "
            "use a larger corpus or a shorter seq_len",
            reason="invalid",
        )
    starts = torch.randint(0, len(tokens) - seq_len - 1, (batch_size,), generator=generator)
    windows = torch.stack([tokens[s : s + seq_len + 1] for s in starts.tolist()])
    return windows[:, :-1], windows[:, 1:]


def eval_batches(
    tokens: torch.Tensor, batch_size: int, seq_len: int, max_tokens: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Consecutive non-overlapping windows from the held-out split, up to `max_tokens`."""
    n_windows = min((len(tokens) - 1) // seq_len, max(1, max_tokens // seq_len))
    if n_windows < 1:
        raise ConfigFailure(
            f"held-out split ({len(tokens)} tokens) is shorter than seq_len={seq_len}",
            reason="invalid",
        )
    windows = torch.stack(
        [tokens[i * seq_len : i * seq_len + seq_len + 1] for i in range(n_windows)]
    )
    return [(w[:, :-1], w[:, 1:]) for w in windows.split(batch_size)]
