import time

import torch

from models.device import choose_precision, choose_threads, probe_peak_flops


def test_probe_is_fast_positive_and_cached():
    threads = torch.get_num_threads()
    start = time.perf_counter()
    fp32 = probe_peak_flops("float32", "cpu", threads)
    bf16 = probe_peak_flops("bfloat16", "cpu", threads)
    assert time.perf_counter() - start < 2.0
    assert fp32 > 0 and bf16 > 0
    start = time.perf_counter()
    assert probe_peak_flops("float32", "cpu", threads) == fp32
    assert time.perf_counter() - start < 0.01


def test_requested_precision_is_honoured_with_its_own_measured_peak():
    threads = torch.get_num_threads()
    forced = choose_precision("cpu", threads, "bfloat16")
    assert forced.dtype == "bfloat16" and forced.autocast_dtype == torch.bfloat16
    assert forced.peak_flops == probe_peak_flops("bfloat16", "cpu", threads)


def test_thread_count_prefers_the_context_then_omp(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert choose_threads({"num_threads": 2}) == 2
    assert choose_threads({}) == 3
