"""Streaming images (fashionlab.datasets.streaming, issue 20): the same batches as the in-memory cache, staging
bounded by one batch, worker errors that name the file, the streaming/cache choice, and a recipe streamed."""
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from fashionlab.datasets import (
    StreamingImages,
    StreamingTwoScaleImages,
    TensorImages,
    TwoScaleImages,
    image_source,
    stream_default,
    triplet_ids,
)

pytestmark = pytest.mark.usefixtures("one_thread")

N, S, G = 24, 20, 12


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """``N`` small images of varied sizes and modes (RGB, greyscale, RGBA) and their file list."""
    root = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(0)
    names = []
    for i in range(N):
        w, h = int(rng.integers(18, 40)), int(rng.integers(18, 40))
        a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        im = Image.fromarray(a)
        im = im.convert("L") if i % 5 == 1 else im.convert("RGBA") if i % 5 == 2 else im
        name = f"im{i:02d}.{'png' if i % 2 else 'jpg'}"
        im.save(root / name) if name.endswith("png") else im.convert("RGB").save(root / name, quality=90)
        names.append(name)
    return root, names


def test_streamed_batches_equal_the_cached_ones(folder):
    root, names = folder
    cached, streamed = TensorImages(root, names, S), StreamingImages(root, names, S, workers=0)
    ids = np.array([3, 0, 7, 3, 20])
    assert torch.equal(cached.batch(ids), streamed.batch(ids))  # synchronous decoding
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert torch.equal(cached.batch(ids, train=True, generator=g1), streamed.batch(ids, train=True, generator=g2))
    chunks = [np.arange(s, min(s + 5, N)) for s in range(0, N, 5)]
    for w in (0, 1):
        streamed.workers = w
        for ids in streamed.prefetch(chunks):
            assert streamed.staged == len(ids)
            assert torch.equal(cached.batch(ids), streamed.batch(ids))  # the staged pixels
        assert streamed.staged == 0  # released when the pass ends


def test_two_scale_streaming_equals_the_cache(folder):
    root, names = folder
    cached, streamed = TwoScaleImages(root, names, S, G), StreamingTwoScaleImages(root, names, S, G, workers=1)
    t = np.array([[0, 1, 2, 0], [5, 6, 7, 1], [9, 9, 10, 2]])
    for a, b in zip(cached.item_batches(np.c_[np.arange(N), np.arange(N) % 3], batch=7, hires=True),
                    streamed.item_batches(np.c_[np.arange(N), np.arange(N) % 3], batch=7, hires=True)):
        for x, y in zip(a, b):
            assert torch.equal(x, y)
    dec = streamed.decoded()  # decoded into memory for code that needs the whole tensors
    assert type(dec) is TwoScaleImages and torch.equal(dec.lo, cached.lo) and torch.equal(dec.hi.data, cached.hi.data)
    for batch in streamed.prefetch([t, t[::-1]], ids_of=triplet_ids):
        torch.manual_seed(3)
        a = cached.triplet_batch(batch, hires=True)
        torch.manual_seed(3)
        b = streamed.triplet_batch(batch, hires=True)
        assert all(torch.equal(x, y) for x, y in zip(a, b))  # the same flips on both scales


def test_staging_holds_one_batch_and_loader_memory_is_bounded(folder):
    root, names = folder
    im = StreamingImages(root, names, S, workers=2, prefetch=2)
    batches = [np.arange(s, s + 4) for s in range(0, N, 4)]
    seen = []
    for ids in im.prefetch(batches):
        seen.append(im.staged)
        im.batch(ids)
    assert max(seen) == im.peak_staged == 4  # never more than one batch staged in the object
    p = im.prefetch(batches)
    it = iter(p)
    next(it)
    assert p.loader.num_workers == 2 and p.loader.prefetch_factor == 2  # in flight: workers x prefetch batches
    it.close()
    assert im.staged == 0


def test_spawned_workers_work_too(folder):
    """A ``DataLoader`` started by ``spawn`` (macOS, Windows) pickles the decoding dataset: nothing staged goes."""
    import pickle

    from fashionlab.datasets.images import _item_ids
    from fashionlab.datasets.streaming import _BatchDecoder

    root, names = folder
    im = StreamingTwoScaleImages(root, names, S, G, workers=0)
    items = np.c_[np.arange(6), np.zeros(6, dtype=np.int64)]
    batches = im.item_batches(items, batch=3)
    next(batches)  # stages the first chunk
    assert im.staged == 3
    copy = pickle.loads(pickle.dumps(_BatchDecoder(im, [items[:3]], _item_ids)))
    assert copy.images.staged == 0 and torch.equal(copy[0][1][1], im._decode(np.arange(3))[1])
    batches.close()


def test_worker_errors_name_the_file_and_line(folder, tmp_path):
    root, names = folder
    names = list(names) + ["missing.jpg"]
    im = StreamingImages(root, names, S, workers=1, source="filenames_train.txt")
    with pytest.raises(FileNotFoundError, match=r"missing\.jpg.*line 25 of filenames_train\.txt"):
        for ids in im.prefetch([np.array([0, 1]), np.array([2, N])]):
            im.batch(ids)
    (tmp_path / "bad.jpg").write_bytes(b"not a jpeg")
    im = StreamingImages(tmp_path, ["bad.jpg"], S, workers=1, source="filenames_test.txt")
    with pytest.raises(OSError, match=r"bad\.jpg.*line 1 of filenames_test\.txt"):
        list(im.prefetch([np.array([0])]))


def test_the_factory_streams_real_data_and_full_mode_only(folder, monkeypatch):
    root, names = folder
    monkeypatch.delenv("FASHIONLAB_STREAM", raising=False)
    assert not stream_default("quick") and not stream_default("default")
    assert stream_default("full") and stream_default("default", real=True)
    assert type(image_source(root, names, S, mode="default")) is TensorImages
    assert type(image_source(root, names, S, G, mode="default")) is TwoScaleImages
    assert type(image_source(root, names, S, G, mode="full")) is StreamingTwoScaleImages
    assert type(image_source(root, names, S, real=True)) is StreamingImages
    monkeypatch.setenv("FASHIONLAB_STREAM", "1")
    monkeypatch.setenv("FASHIONLAB_WORKERS", "3")
    im = image_source(root, names, S, mode="quick")
    assert type(im) is StreamingImages and im.workers == 3
    monkeypatch.setenv("FASHIONLAB_STREAM", "0")
    assert type(image_source(root, names, S, real=True)) is TensorImages
    assert type(image_source(root, names, S, real=True, stream=True)) is StreamingImages  # the argument wins
    with pytest.raises(AttributeError, match="stream"):
        StreamingImages(root, names, S).data


def test_triplet_recipe_streamed_trains_and_evaluates_as_cached(tmp_path, monkeypatch):
    """The triplet baseline's data object, cached and streamed (one worker): the same training losses and the
    same test mAP."""
    from fashionlab.experiments import baselines
    from fashionlab.synth import ensure_fashionai

    monkeypatch.setenv("FASHIONLAB_DATA", str(tmp_path))
    monkeypatch.setenv("FASHIONLAB_PROGRESS", "0")
    monkeypatch.delenv("FASHIONLAB_STREAM", raising=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        root = ensure_fashionai(num_images=300, seed=0, image_size=32, progress=False)
    cfg = baselines.TripletConfig(backbone="smallcnn", width=8, input_size=32, epochs=1, triplets_per_epoch=64,
                                  batch=16, lr=1e-3)
    out = []
    for stream in (False, True):
        monkeypatch.setenv("FASHIONLAB_WORKERS", "1")
        data = baselines.TripletData(root, cfg, seed=0, stream=stream)
        assert isinstance(data.images["train"], StreamingImages) == stream
        torch.manual_seed(0)
        model = baselines.build_model(cfg)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hist = baselines.train(model, data, cfg, seed=0, device=torch.device("cpu"), mode=f"s{stream}")
            out.append((hist[0]["loss"], baselines.evaluate(model, data, "test")))
    (l0, s0), (l1, s1) = out
    assert l0 == l1 and s0 == s1
