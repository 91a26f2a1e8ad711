"""Optimizer-test fixtures. torch is imported inside the fixture: the Python 3.12 CI job runs
this folder's torch-free tests (spaces, expressions) without torch installed."""

import pytest


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Small GP matrices gain nothing from threads; on a shared machine they only contend."""
    try:
        import torch
    except ImportError:
        yield
        return
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
