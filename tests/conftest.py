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


def run_tiny_experiment(tmp_path_factory, name: str, configs: dict, tiny):
    """Run experiment ``name`` in quick mode with ``configs["quick"]`` replaced by ``tiny``, its data rendered
    into a fresh temporary data root and its results written to a fresh folder. Returns ``(result, folder)``.
    The experiment test modules call it from a module-scoped fixture, so the run happens once per module."""
    from fashionlab import experiments

    data = tmp_path_factory.mktemp("data")
    out = tmp_path_factory.mktemp("results")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FASHIONLAB_DATA", str(data))
        mp.setenv("FASHIONLAB_PROGRESS", "0")
        mp.setitem(configs, "quick", tiny)
        res = experiments.run(name, mode="quick", seed=0, out=out, progress=False)
    return res, out


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` need CUDA: without it they are skipped, with the reason shown (``pytest -rs``).
    ``make gpu-check`` (benchmarks/gpu_check.py) runs them on a CUDA machine with ``pytest -m gpu``."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="gpu test: needs CUDA (torch.cuda.is_available() is False on this machine); "
                                   "run `make gpu-check` on a CUDA machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def hub_dir(tmp_path, monkeypatch):
    """An empty torch hub folder for the test (the ImageNet weights looked for and downloaded there), offline and
    with no ImageNet start asked, whatever the caller's environment says."""
    monkeypatch.setenv("FASHIONLAB_DOWNLOAD_WEIGHTS", "")
    monkeypatch.delenv("FASHIONLAB_PRETRAINED", raising=False)
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    try:
        yield tmp_path / "hub"
    finally:
        torch.hub.set_dir(old)
