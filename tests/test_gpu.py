"""CUDA tests of the training engine (issue 20): ``fit`` with mixed precision and ``extract_features`` on a GPU.

Marked ``gpu``: skipped without CUDA (tests/conftest.py); ``make gpu-check`` runs them with ``pytest -m gpu``, as
well as the one-step full-mode test on CUDA (tests/test_full_mode.py).
"""
from __future__ import annotations

import math

import pytest
import torch

from fashionlab import engine
from fashionlab.losses import TripletRankingLoss
from fashionlab.models import GlobalPoolEmbedding, SmallCNN, backbone

pytestmark = pytest.mark.gpu


def _triplets(n: int, size: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(6, 3, size, size, generator=g) for _ in range(n)]


@pytest.mark.parametrize("amp", [None, "fp16"])
def test_fit_with_amp_on_cuda(amp, tmp_path):
    """A ResNet-50 embedding (the full mode's backbone) trains with autocast (bf16 where the GPU has it, else fp16
    with a GradScaler; ``"fp16"``: always the scaler) and channels_last; the loss is finite and the weights move."""
    torch.manual_seed(0)
    model = GlobalPoolEmbedding(backbone("resnet50", stage="layer3"), 64)
    before = [p.detach().clone() for p in model.parameters()]
    loss = TripletRankingLoss(0.2)
    batches = _triplets(3, 96)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    seen = {}

    def step(m, x):
        seen["device"], seen["cl"] = x.device.type, x.is_contiguous(memory_format=torch.channels_last)
        seen["dtype"] = torch.get_autocast_dtype("cuda") if torch.is_autocast_enabled("cuda") else None
        return loss(m(x))

    hist = engine.fit(model, step, lambda e: batches, opt, 2, device="cuda", amp=amp, progress=False,
                      verbose=False)
    assert len(hist) == 2 and all(math.isfinite(h["loss"]) for h in hist)
    assert seen["device"] == "cuda" and seen["cl"]
    assert seen["dtype"] == engine.resolve_amp(amp, torch.device("cuda")) is not None
    assert next(model.parameters()).device.type == "cuda"
    moved = sum(not torch.equal(b, p.detach().cpu()) for b, p in zip(before, model.parameters()))
    assert moved > 0


def test_extract_features_on_cuda_matches_cpu():
    """Embeddings on CUDA (autocast, float32 out) match the CPU's within half-precision error, in loader order."""
    torch.manual_seed(0)
    model = GlobalPoolEmbedding(SmallCNN(width=16), 32).eval()
    xs = [torch.randn(5, 3, 64, 64) for _ in range(3)]
    cpu = engine.extract_features(model, xs, device="cpu")
    gpu = engine.extract_features(model, xs, device="cuda")
    assert gpu.device.type == "cuda" and gpu.dtype == torch.float32 and gpu.shape == (15, 32)
    assert torch.isfinite(gpu).all()
    assert torch.allclose(gpu.cpu(), cpu, atol=3e-2), (gpu.cpu() - cpu).abs().max()
    on_cpu = engine.extract_features(model, xs, device="cuda", out_device="cpu")
    assert on_cpu.device.type == "cpu" and torch.allclose(on_cpu, gpu.cpu())
