"""Shared fixtures of the test suite."""
from __future__ import annotations

import pytest
import torch


@pytest.fixture
def one_thread():
    """Run a test single-threaded: tiny tensors gain nothing from intra-op threads, and on a shared 2-core
    machine OpenMP threads spinning against another process make such tests up to 100x slower.
    Test modules opt in with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)
