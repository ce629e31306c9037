"""Training throughput: images per second of a forward + backward + optimiser step, per model and input size.

Prints a table (no assertions): the bare backbones behind a pooled embedding (``GlobalPoolEmbedding``), fp32 on
this machine's CPU, and on CUDA (with AMP and channels_last, as ``fashionlab.engine.fit`` uses them) when a GPU is
present. Paper 01's models (notebooks 01-02, default-mode
sizes: SmallCNN width 16 at 64 px) sit next to their bare backbone; so do paper 03's (notebook 03: a 128 px image
seen at 48 px by SmallCNN width 16 with output stride 8; ASEN adds its local branch on a crop of the 128 px
image); so do paper 04's (notebook 04: the 80 px input of SmallCNN width 24 with output stride 8; the two-path
network pools five part boxes per image); so do paper 05's (notebook 05: SmallCNN width 16, output stride 8, at
64 px; M3-Net's attribute and class levels for one attribute and one class per image, the work of a training
step); so do paper 06's (notebook 06: the STL networks and MTL w/ RNN+VA on 64 px crops, SmallCNN width 16 at
output stride 8; the small Faster R-CNN on 128 px scenes). Later notebooks add their models to ``MODELS``. Run: ``python benchmarks/bench_training.py [--quick]``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fashionlab.engine import resolve_amp  # noqa: E402
from fashionlab.models import GlobalPoolEmbedding, SmallCNN, backbone  # noqa: E402


def _embed(net, dim=64):
    return GlobalPoolEmbedding(net, dim)


class _Paper01(torch.nn.Module):
    """Paper 01's models (notebooks 01-02) as the benchmark sees them: ``cond(x, c)`` with every image under a
    dimension (cycling through the eight), plus the recognition logits where the model has a recognition head."""

    def __init__(self, method: str):
        super().__init__()
        from fashionlab.experiments import paper01
        from fashionlab.taxonomy import FASHIONAI

        self.num_dims = len(FASHIONAI.attributes)
        self.model = paper01.build_model(method, paper01.PAPER01_CONFIGS["default"], FASHIONAI.num_values)

    def forward(self, x):
        c = torch.arange(len(x), device=x.device) % self.num_dims
        m = self.model
        if not hasattr(m, "csn"):
            return m.cond(x, c)  # SiaNet, TriNet, Att-TriNet(+Reg): one embedding per image
        # the recognition / joint models, as their training step runs them: one backbone pass, then the heads
        f = m.embedding(x)
        out = [] if m.csn is None else [m.csn.condition(f, c)]
        if m.rec is not None:
            logits = m.rec.head(f)  # one tensor (single column) or one per dimension (multi-column)
            out += list(logits) if isinstance(logits, (list, tuple)) else [logits]
        return torch.cat(out, dim=1)


class _Paper03(torch.nn.Module):
    """Paper 03's models (notebook 03) at the default mode's sizes: the input is the 128 px "high-resolution"
    image; every method sees it downscaled to the 48 px global view (antialiased, as ``TwoScaleImages``), each
    image under an attribute (cycling through the eight); ``ASEN`` also crops the 128 px image around its
    attention for the local branch (both embeddings are returned, as stage 2 trains both)."""

    def __init__(self, method: str):
        super().__init__()
        from fashionlab.experiments import paper03

        self.method, self.cfg = method, paper03.ASEN_CONFIGS["default"]
        if method == "bare":
            self.model = _embed(paper03.build_backbone(self.cfg))
        elif method == "ASEN":
            self.model = paper03.build_asen(paper03.build_model("ASEN_g", self.cfg, 8), self.cfg)
        else:
            self.model = paper03.build_model(method, self.cfg, 8)

    def forward(self, x):
        import torch.nn.functional as F

        lo = F.interpolate(x, size=self.cfg.global_size, mode="bilinear", antialias=True, align_corners=False)
        a = torch.arange(len(x), device=x.device) % 8
        if self.method in ("bare", "Triplet"):
            return self.model(lo)
        if self.method == "CSN":
            return self.model(lo, a)
        if self.method == "ASEN":
            out = self.model(lo, a, x)
            return torch.cat([out.global_embedding, out.local_embedding], dim=1)
        return self.model(lo, a).embedding


class _Paper04(torch.nn.Module):
    """Paper 04's models (notebook 04) at the default mode's sizes: ``Classic`` (the attribute classifier) and the
    two-path network with parts (``Proposed``) or without (``w/o parts``). Every image gets the same five part
    boxes (a fixed torso, sleeves, collar and fastening layout) and the "sleeved" case, so every branch pools a
    part; the outputs are every signature and logit (what the losses read)."""

    def __init__(self, method: str):
        super().__init__()
        from fashionlab.experiments import paper04
        from fashionlab.parts import PART_NAMES
        from fashionlab.synth.shop import ATTR_NUM, GENERAL, SPECIAL

        self.method, self.cfg = method, paper04.PART_SEARCH_CONFIGS["default"]
        from types import SimpleNamespace

        shape = SimpleNamespace(num_values=dict(zip(GENERAL + SPECIAL, ATTR_NUM)), general=GENERAL, special=SPECIAL,
                                part_names=PART_NAMES)  # what build_model reads of the data
        self.model = paper04.build_model(method, self.cfg, shape, seed=0)
        s = self.cfg.input_size / 128
        layout = {"torso": [40, 30, 88, 100], "left_sleeve": [20, 30, 40, 90], "right_sleeve": [88, 30, 108, 90],
                  "collar": [52, 20, 76, 40], "fastening": [58, 30, 70, 100]}
        self.register_buffer("boxes", torch.tensor([layout[p] for p in PART_NAMES], dtype=torch.float32) * s)

    def forward(self, x):
        if self.method == "Classic":
            return torch.cat(list(self.model(x).values()), dim=1)
        b = len(x)
        out = self.model(x, self.boxes.expand(b, -1, -1), torch.ones(b, len(self.boxes), dtype=torch.bool,
                                                                      device=x.device),
                         case=torch.ones(b, dtype=torch.long, device=x.device))
        return torch.cat(list(out.signatures.values()) + list(out.logits.values()), dim=1)


class _Paper05(torch.nn.Module):
    """Paper 05's models (notebook 05) at the default mode's sizes on the multi-label preset's 11/10/11 classes:
    ``ASEN`` (ASEN_g) and the three M3-Nets. Each image is taken under one attribute (cycling over the three) and,
    for the M3-Nets, one class of it: the outputs are the attribute-level embedding and logits and the
    class-specific embedding, what Eq. 11 reads."""

    NUM_CLASSES = (11, 10, 11)

    def __init__(self, method: str):
        super().__init__()
        from fashionlab.experiments import paper05

        self.method = method
        cfg = paper05.M3_CONFIGS["default"]
        data = type("Shape", (), {"num_classes": self.NUM_CLASSES, "attributes": ["texture", "shape", "part"]})()
        self.model = paper05.build_model(method, cfg, data, seed=None)

    def forward(self, x):
        b = len(x)
        attr = torch.arange(b, device=x.device) % 3
        if self.method == "ASEN":
            return self.model(x, attr).embedding
        fmap = self.model.features(x)
        outs = []
        for n in range(3):
            idx = (attr == n).nonzero().flatten()
            a = self.model.attribute_level(fmap[idx], n)
            c = self.model.class_level(a.fmap, n, idx % self.NUM_CLASSES[n])
            outs += [a.embedding, a.logits, c.embedding]
        return torch.cat([o.reshape(-1) for o in outs])


class _Paper06(torch.nn.Module):
    """Paper 06's models (notebook 06) at the default mode's sizes on the outfit preset's 4 object types, 14
    categories and 24 attributes: the STL networks (Baseline STL's two and STL w/ HLS's two, the latter given
    a label to embed), MTL w/ RNN+VA (two attention + GRU steps, teacher-forced) on 64 px crops, and the
    Faster R-CNN on 128 px scenes with two boxes per scene (its four losses)."""

    SIZES = (4, 14, 24)

    def __init__(self, method: str):
        super().__init__()
        from fashionlab.experiments import paper06
        from fashionlab.models import MTLRNNVA, STLClassifier, build_detector

        cfg = paper06.HLS_CONFIGS["default"]
        t, c, a = self.SIZES
        self.method = method
        if method == "Faster R-CNN":
            self.model = build_detector(num_classes=t, image_size=cfg.scene_size, width=cfg.det_width,
                                        representation_dim=cfg.det_representation)
        elif method == "MTL w/ RNN+VA":
            self.model = MTLRNNVA(paper06.build_stage2_backbone(cfg), t, c, a, hidden_dim=cfg.hidden_dim,
                                  attention_units=cfg.attention_units, embed_dim=cfg.embed_dim, fc_dim=cfg.fc_dim)
        else:
            kind = "category" if "category" in method else "attributes"
            cond = (t if kind == "category" else c) if "HLS" in method else None
            self.model = STLClassifier(paper06.build_stage2_backbone(cfg), c if kind == "category" else a,
                                       condition_classes=cond, embed_dim=cfg.embed_dim)

    def forward(self, x):
        b = len(x)
        idx = torch.arange(b, device=x.device)
        if self.method == "Faster R-CNN":
            s = x.shape[-1]
            box = torch.tensor([[0.2 * s, 0.1 * s, 0.7 * s, 0.5 * s], [0.3 * s, 0.8 * s, 0.5 * s, 0.95 * s]],
                               device=x.device)
            targets = [{"boxes": box, "labels": torch.tensor([1, 4], device=x.device)} for _ in range(b)]
            losses = self.model(list(x.float().sigmoid()), targets)
            return torch.stack(list(losses.values()))
        if self.method == "MTL w/ RNN+VA":
            out = self.model(x, idx % self.SIZES[0], category=idx % self.SIZES[1])
            return torch.cat([out.category.reshape(-1), out.attributes.reshape(-1)])
        if getattr(self.model, "condition_classes", None):
            return self.model(x, idx % self.model.condition_classes)
        return self.model(x)


PAPER01_METHODS = ("SC", "MC", "MC-Rec+Ret", "SiaNet", "TriNet", "Att-TriNet", "Att-TriNet+Reg", "CSN", "MTL Ret+Reg")

PAPER03_METHODS = ("Triplet", "CSN", "ASEN_g w/o ASA", "ASEN_g w/o ACA", "ASEN_g", "ASEN")

PAPER04_METHODS = ("Classic", "w/o parts", "Proposed")

PAPER05_METHODS = ("ASEN", "M3-Net_a", "M3-Net_c", "M3-Net")

PAPER06_METHODS = ("Baseline STL category", "Baseline STL attributes", "STL w/ HLS category",
                   "STL w/ HLS attributes", "MTL w/ RNN+VA")

#: (name, input size, builder)
MODELS = [
    ("SmallCNN(w=16) embedding (bare)", 64, lambda: _embed(SmallCNN(width=16))),
    *[(f"paper 01 {m}", 64, (lambda m=m: _Paper01(m))) for m in PAPER01_METHODS],
    ("SmallCNN(w=16, os 8) at 48px (bare)", 128, lambda: _Paper03("bare")),
    *[(f"paper 03 {m}", 128, (lambda m=m: _Paper03(m))) for m in PAPER03_METHODS],
    *[(f"paper 04 {m}", 80, (lambda m=m: _Paper04(m))) for m in PAPER04_METHODS],
    *[(f"paper 05 {m}", 64, (lambda m=m: _Paper05(m))) for m in PAPER05_METHODS],
    *[(f"paper 06 {m}", 64, (lambda m=m: _Paper06(m))) for m in PAPER06_METHODS],
    ("paper 06 Faster R-CNN (scenes)", 128, lambda: _Paper06("Faster R-CNN")),
    ("SmallCNN(w=32) embedding", 64, lambda: _embed(SmallCNN(width=32))),
    ("SmallCNN(w=32) embedding", 128, lambda: _embed(SmallCNN(width=32))),
    ("ResNet-18 to layer3 embedding", 112, lambda: _embed(backbone("resnet18"))),
    ("ResNet-50 to layer3 embedding", 224, lambda: _embed(backbone("resnet50"))),
]


def throughput(model, size: int, batch: int, dev: torch.device, steps: int, warmup: int = 2) -> float:
    """Images per second of training steps on random images (the data pipeline is not measured)."""
    model = model.to(dev).train()
    cuda = dev.type == "cuda"
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    amp = resolve_amp(None, dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = torch.randn(batch, 3, size, size, device=dev)
    if cuda:
        x = x.to(memory_format=torch.channels_last)
    for i in range(warmup + steps):
        if i == warmup:
            if cuda:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        with torch.autocast(dev.type, dtype=amp, enabled=amp is not None):
            loss = model(x).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if cuda:
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - t0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer steps, skip the ResNet-50 row on CPU")
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args(argv)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads; batch {args.batch}; "
          "random inputs, forward + backward + Adam step")
    print(f"{'model':36s} {'input':>6s} {'device':>7s} {'images/s':>10s}")
    for name, size, build in MODELS:
        for dev in devices:
            if dev.type == "cpu" and size >= 224 and args.quick:
                continue
            steps = 3 if (dev.type == "cpu" and (args.quick or size >= 112)) else 10
            batch = args.batch if dev.type == "cuda" or size < 200 else 16
            if "R-CNN" in name:
                batch = 8  # the detector trains on 8 scenes per step (notebook 06)
            ips = throughput(build(), size, batch, dev, steps)
            print(f"{name:36s} {size:>5d}px {dev.type:>7s} {ips:>10.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
