"""Running paper 06's networks (:mod:`fashionlab.models.hls`) on the outfit data
(:class:`fashionlab.datasets.outfits.OutfitData`): the training batches and step of a stage-2 network, the
detector's batches, and inference through ``engine.extract_features`` (the one no-grad loop).

* :func:`crop_batches` / :func:`stage2_step` / :func:`adam` / :func:`validation_fn`: the batches, the
  ``engine.fit`` step, the optimiser and the model selection of every stage-2 network (§3.2.2: augmentation of
  §3.2, then the CE / BCE / CE + BCE of :func:`~fashionlab.models.hls_loss`, Eq. 1-7 for MTL w/ RNN+VA);
  :func:`scene_batches`: the detector's batches (§3.2.1).
* :func:`predict` / :func:`method_outputs`: logits of a stage-2 network / of a method's networks chained as the
  paper shares labels at test time (predicted object type -> category -> attributes); :func:`top_attributes`:
  the top-k attributes recall@k counts; :func:`detect`: the detector's boxes per scene.

Every pass over images goes batch by batch through :func:`fashionlab.datasets.prefetched`: for in-memory arrays
the batches are indexed out of them as before; for streamed ones (:class:`~fashionlab.datasets.StreamingArray`,
a ``--data`` folder or ``full`` mode) ``DataLoader`` workers decode each batch ahead, so memory holds a few
batches, never a split.
"""
from __future__ import annotations

import numpy as np

__all__ = ["crop_batches", "stage2_step", "adam", "validation_fn", "MONITOR", "scene_batches", "detect", "predict",
           "method_outputs", "top_attributes"]

#: Scenes per batch of :func:`detect` and crops per batch of :func:`predict` (when not given): the most images
#: an inference pass holds at once (streamed or not).
DETECT_BATCH = 16
PREDICT_BATCH = 256


def crop_batches(crops: dict, batch: int, seed: int, epoch: int, keys=("object_type", "category", "attributes"),
                 index: np.ndarray | None = None):
    """The training batches of ``epoch``: ``(uint8 images, *keys)`` tensors in an order drawn from
    ``(seed, epoch)``; ``index`` restricts them to those crops. Streamed crops are decoded ahead by the
    ``DataLoader`` workers of :func:`~fashionlab.datasets.prefetched`."""
    import torch

    from ..datasets import prefetched

    n = len(crops["category"]) if index is None else len(index)
    order = np.random.default_rng([seed, epoch]).permutation(n)
    if index is not None:
        order = index[order]
    images = crops["images"]
    for i in prefetched(images, [order[b:b + batch] for b in range(0, len(order), batch)]):
        yield (torch.from_numpy(images[i]),) + tuple(torch.from_numpy(np.asarray(crops[k][i])) for k in keys)


def stage2_step(net, task: str, cfg):
    """The training step of a stage-2 network for ``engine.fit``: augment the batch (§3.2, flips, rotation, zoom,
    :func:`fashionlab.models.augment`, by ``cfg.rotation`` and ``cfg.zoom``: the experiment's ``HLSConfig``), run
    the network and return :func:`fashionlab.models.hls_loss`:

    * ``task="category"``: categorical cross-entropy of the softmax; a conditioned network (STL w/ HLS) gets the
      ground-truth object type (teacher forcing);
    * ``task="attributes"``: binary cross-entropy of the sigmoids; a conditioned network gets the true category;
    * ``task="mtl"``: MTL w/ RNN+VA, the sum CE + BCE, the true category fed to the decoder's step 2 (Eq. 6)."""
    import torch

    from .hls import augment, hls_loss

    conditioned = bool(getattr(net, "condition_classes", None))

    def step(m, batch):
        x, t, c, a = batch
        gen = torch.Generator(device=x.device).manual_seed(int(torch.randint(0, 2**31 - 1, (1,))))
        x = augment(x.float().div_(255), generator=gen, rotation=cfg.rotation, zoom=cfg.zoom)
        if task == "mtl":
            out = m(x, t, category=c)
            return hls_loss(out.category, out.attributes, c, a)
        if conditioned:
            out = m(x, t if task == "category" else c)
        else:
            out = m(x)
        return hls_loss(out, None, c) if task == "category" else hls_loss(None, out, attributes=a)

    return step


def adam(model, cfg, n_items: int):
    """Adam at ``cfg.lr`` with a cosine schedule over ``cfg.epochs`` epochs of ``n_items`` crops (stepped per
    batch): the optimiser of every stage-2 network."""
    import torch

    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, cfg.epochs * -(-n_items // cfg.batch)))
    return opt, sched


def validation_fn(task: str, crops: dict):
    """``eval_fn`` for ``engine.fit``: validation top-1 (``task="category"``), recall@3 (``"attributes"``) or
    their sum (``"mtl"``, the network predicting its own category for step 2), in percent."""
    from ..metrics import attribute_recall_at_k, topk_accuracy

    def top1(logits):
        return {"valid_top1": 100 * topk_accuracy(logits, crops["category"], ks=(1,))[1]
                if len(crops["category"]) else 0.0}

    def recall3(logits):
        ok = len(crops["attributes"]) > 0 and np.asarray(crops["attributes"]).any()
        return {"valid_recall@3": 100 * attribute_recall_at_k(logits, crops["attributes"], 3) if ok else 0.0}

    def eval_fn(m, epoch):
        if task == "mtl":
            p = predict(m, crops["images"], object_type=crops["object_type"], kind="mtl")
            r = {**top1(p["category"]), **recall3(p["attributes"])}
            return {"valid_sum": r["valid_top1"] + r["valid_recall@3"], **r}
        logits = predict(m, crops["images"], object_type=crops["object_type"], category=crops["category"], kind=task)
        return top1(logits) if task == "category" else recall3(logits)

    return eval_fn


MONITOR = {"category": "valid_top1", "attributes": "valid_recall@3", "mtl": "valid_sum"}


def scene_batches(images: np.ndarray, ds, order: np.ndarray, batch: int, flip: np.ndarray | None):
    """Detector batches of ``order``'s scenes: ``(list of float (3, S, S) images in [0, 1], list of targets
    {"boxes" x1 y1 x2 y2, "labels" object type + 1})`` as torchvision's Faster R-CNN takes them; ``flip[b]``
    mirrors the ``b``-th scene of ``order`` and its boxes horizontally (stage 1's augmentation, §3.2.1).
    ``images``: ``uint8 (N, S, S, 3)``, in memory or a :class:`~fashionlab.datasets.StreamingArray` (prefetched)."""
    import torch

    from ..datasets import prefetched

    chunks = [order[b:b + batch] for b in range(0, len(order), batch)]
    for b, idx in zip(range(0, len(order), batch), prefetched(images, chunks)):
        px = images[idx]
        imgs, targets = [], []
        for j, i in enumerate(idx):
            x = torch.from_numpy(px[j]).permute(2, 0, 1).float().div_(255)
            boxes = torch.as_tensor(ds.boxes[i], dtype=torch.float32).reshape(-1, 4)
            if flip is not None and flip[b + j]:
                x = x.flip(-1)
                w = x.shape[-1]
                boxes = torch.stack([w - boxes[:, 2], boxes[:, 1], w - boxes[:, 0], boxes[:, 3]], 1)
            imgs.append(x)
            targets.append({"boxes": boxes, "labels": torch.as_tensor(ds.object_types[i], dtype=torch.int64) + 1})
        yield imgs, targets


def detect(detector, images: np.ndarray, batch: int | None = None,
           device=None) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Run ``detector`` on ``uint8 (N, S, S, 3)`` scenes (``engine.extract_features``, detections padded to the
    detector's ``detections_per_img`` per scene and cut back); per scene ``(boxes (k, 4) x1 y1 x2 y2, scores
    (k,), labels (k,) 0-based object types)``. ``images``: in memory or a
    :class:`~fashionlab.datasets.StreamingArray`, read ``batch`` (default :data:`DETECT_BATCH`) scenes at a time,
    prefetched."""
    import torch

    from ..datasets import prefetched
    from ..engine import extract_features

    if len(images) == 0:
        return []
    batch = DETECT_BATCH if batch is None else batch
    k = int(detector.roi_heads.detections_per_img)
    chunks = [np.arange(b, min(b + batch, len(images))) for b in range(0, len(images), batch)]

    def scenes():
        for ids in prefetched(images, chunks, device=device):
            sl = slice(int(ids[0]), int(ids[-1]) + 1)
            yield [torch.from_numpy(im).permute(2, 0, 1).float().div_(255) for im in images[sl]]

    def padded(xs):
        res = detector(xs)
        dev = xs[0].device
        out = {"boxes": torch.zeros(len(res), k, 4, device=dev), "scores": torch.zeros(len(res), k, device=dev),
               "labels": torch.zeros(len(res), k, dtype=torch.int64, device=dev),
               "n": torch.tensor([len(r["scores"]) for r in res], device=dev)}
        for j, r in enumerate(res):
            n = len(r["scores"])
            out["boxes"][j, :n], out["scores"][j, :n], out["labels"][j, :n] = r["boxes"], r["scores"], r["labels"]
        return out

    f = extract_features(padded, scenes(), device=device, model=detector, out_device="cpu")
    return [(f["boxes"][i, :n].numpy(), f["scores"][i, :n].numpy(), f["labels"][i, :n].numpy() - 1)
            for i, n in enumerate(f["n"].tolist())]


def predict(model, images: np.ndarray, object_type=None, category=None, kind: str = "category",
            batch: int | None = None, device=None) -> np.ndarray | dict:
    """Logits of a stage-2 network on ``uint8 (M, 3, c, c)`` crops (``engine.extract_features``; the crops in
    memory or a :class:`~fashionlab.datasets.StreamingArray`, read ``batch`` at a time, default
    :data:`PREDICT_BATCH`, prefetched). ``kind``: ``"category"`` or ``"attributes"`` for an
    :class:`~fashionlab.models.STLClassifier` (given ``object_type`` or ``category`` as its condition when it has
    one), ``"mtl"`` for :class:`~fashionlab.models.MTLRNNVA` (returns ``{"category", "attributes",
    "attention"}``; ``category=None``: its own predicted category feeds the second step)."""
    import torch

    from ..datasets import prefetched
    from ..engine import extract_features

    if len(images) == 0:  # shapes of an empty batch: run one blank crop and keep none of it
        blank = np.zeros((1,) + tuple(images.shape[1:]), np.uint8)
        one = lambda v: None if v is None else np.zeros(1, np.int64)  # noqa: E731
        r = predict(model, blank, one(object_type), one(category), kind, batch, device)
        return {k: v[:0] for k, v in r.items()} if kind == "mtl" else r[:0]
    batch = PREDICT_BATCH if batch is None else batch
    cond = object_type if kind in ("category", "mtl") else category
    conditioned = kind == "mtl" or bool(getattr(model, "condition_classes", None))
    as_tensor = lambda v, sl: None if v is None else torch.from_numpy(np.asarray(v[sl]))  # noqa: E731

    chunks = [np.arange(b, min(b + batch, len(images))) for b in range(0, len(images), batch)]

    def batches():
        for ids in prefetched(images, chunks, device=device):
            sl = slice(int(ids[0]), int(ids[-1]) + 1)
            yield (torch.from_numpy(images[sl]), as_tensor(cond if conditioned else None, sl),
                   as_tensor(category if kind == "mtl" else None, sl))

    def run(bt):
        x, c, c2 = bt
        x = x.float().div_(255)
        if kind == "mtl":
            o = model(x, c, category=c2)
            return {"category": o.category, "attributes": o.attributes, "attention": o.attention}
        return model(x, c) if conditioned else model(x)

    out = extract_features(run, batches(), device=device, model=model, out_device="cpu")
    return {k: v.numpy() for k, v in out.items()} if kind == "mtl" else out.numpy()


def method_outputs(method: str, model, crops: dict, device=None) -> dict:
    """Category logits, attribute logits and (MTL) attention of ``method``'s ``model`` on ``crops`` (``images``
    and the ``object_type`` to share). HLS uses predictions: the category network's prediction is the attribute
    network's condition; MTL feeds its own predicted category to its second step."""
    if method == "MTL w/ RNN+VA":
        return predict(model, crops["images"], object_type=crops["object_type"], kind="mtl", device=device)
    cat = predict(model["category"], crops["images"], object_type=crops["object_type"], kind="category",
                  device=device)
    att = predict(model["attributes"], crops["images"], category=cat.argmax(1), kind="attributes", device=device)
    return {"category": cat, "attributes": att}


def top_attributes(scores: np.ndarray, k: int) -> np.ndarray:
    """``bool (M, A)``: the ``k`` highest-scoring attributes of each item, the predictions recall@k counts
    (ties to the lower index, as :func:`fashionlab.metrics.attribute_recall_at_k`)."""
    order = np.argsort(-np.asarray(scores), axis=1, kind="stable")[:, :k]
    out = np.zeros(np.shape(scores), dtype=bool)
    np.put_along_axis(out, order, True, axis=1)
    return out
