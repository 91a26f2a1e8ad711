import json

import pytest
import torch

from carbs.errors import ConfigFailure
from models import data


def test_stdlib_corpus_is_deterministic_and_capped():
    first = data.load_documents("stdlib", max_bytes=200_000)
    second = data.load_documents("stdlib", max_bytes=200_000)
    assert first == second
    assert sum(len(d.encode()) for d in first) <= 200_000
    assert data.fingerprint(first) == data.fingerprint(second)
    assert data.fingerprint(first) != data.fingerprint(data.load_documents("stdlib", 100_000))


def test_user_directory_reads_text_and_jsonl_records(small_corpus):
    docs = data.load_documents(str(small_corpus))
    lines = (small_corpus / "more.jsonl").read_text().splitlines()
    assert len(docs) == 1 + len(lines)
    assert json.loads(lines[0])["text"] in docs


def test_missing_corpus_path_is_an_invalid_config(tmp_path):
    with pytest.raises(ConfigFailure, match="corpus") as info:
        data.load_documents(str(tmp_path / "nope"))
    assert info.value.reason == "invalid"


def test_tokenizer_is_trained_once_and_reused_from_the_cache(small_corpus, monkeypatch):
    docs = data.load_documents(str(small_corpus))
    tok = data.get_tokenizer(docs, 512)
    cached = list((data.cache_dir() / "tokenizers").glob("*-512.json"))
    assert len(cached) == 1
    mtime = cached[0].stat().st_mtime_ns

    def must_not_train(*args, **kwargs):
        raise AssertionError("tokenizer retrained despite a cache entry")

    monkeypatch.setattr(data, "train_tokenizer", must_not_train)
    again = data.get_tokenizer(docs, 512)
    assert again.encode("def f(x):\n    return x").ids == tok.encode("def f(x):\n    return x").ids
    assert cached[0].stat().st_mtime_ns == mtime
    assert tok.get_vocab_size() == 512


def test_token_split_is_fixed_and_ids_fit_the_vocabulary(small_corpus):
    data.load_tokens.cache_clear()
    first = data.load_tokens(str(small_corpus), 512)
    data.load_tokens.cache_clear()  # second load comes from the on-disk token cache
    second = data.load_tokens(str(small_corpus), 512)
    assert torch.equal(first.val, second.val) and torch.equal(first.train, second.train)
    assert len(first.val) == pytest.approx(0.05 * (len(first.train) + len(first.val)), abs=2)
    assert int(first.train.max()) < 512
    assert first.fingerprint == data.fingerprint(data.load_documents(str(small_corpus)))


def test_batches_are_next_token_shifted_windows():
    tokens = torch.arange(1000)
    x, y = data.sample_batch(tokens, 4, 16, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (4, 16)
    assert torch.equal(y, x + 1)
    batches = data.eval_batches(tokens, 3, 16, max_tokens=160)
    assert sum(b[0].shape[0] for b in batches) == 10
    assert torch.equal(batches[0][0][1], torch.arange(16, 32))


def _build_tokenizer(corpus: str, cache: str, vocab: int) -> list[int]:
    import os

    os.environ["CARBS_CACHE_DIR"] = cache
    from models import data as child_data

    tok = child_data.get_tokenizer(child_data.load_documents(corpus), vocab)
    return tok.encode("import os\nprint(os.getcwd())").ids


@pytest.mark.slow
def test_two_processes_building_the_same_tokenizer_leave_one_complete_file(small_corpus, tmp_path):
    import multiprocessing

    cache = tmp_path / "shared_cache"
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        ids = pool.starmap(_build_tokenizer, [(str(small_corpus), str(cache), 384)] * 2)
    assert ids[0] == ids[1]
    files = sorted(p.name for p in (cache / "tokenizers").iterdir())
    assert len(files) == 1 and files[0].endswith("-384.json")
