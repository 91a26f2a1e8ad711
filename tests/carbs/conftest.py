"""Optimizer-test fixtures."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Small GP matrices gain nothing from threads; on a shared machine they only contend."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
