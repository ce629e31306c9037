"""Streaming images (fashionlab.datasets.streaming, issue 20): the same batches as the in-memory cache, staging
bounded by one batch, worker errors that name the file, the streaming/cache choice, a recipe streamed; the plain
streamed array of paper 06 and its detected crops; papers 04 and 06 streamed end to end (memory bounded by a
batch, the rows of the in-memory run, exactly)."""
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


# ----------------------------------------------------------------------------------------------------------
# StreamingArray: a plain image array read on indexing (paper 06's scenes and crops)
# ----------------------------------------------------------------------------------------------------------
def test_streamed_array_indexes_like_the_cached_one(folder):
    from fashionlab.datasets import StreamingArray, image_array

    root, names = folder
    for layout in ("chw", "hwc"):
        cached = image_array(root, names, S, layout=layout, stream=False)
        streamed = image_array(root, names, S, layout=layout, stream=True, workers=0)
        assert type(cached) is np.ndarray and type(streamed) is StreamingArray
        assert streamed.shape == cached.shape and streamed.dtype == cached.dtype and len(streamed) == N
        mask = np.arange(N) % 3 == 0
        for key in (5, -1, np.int64(7), slice(2, 9), slice(None, None, -4), np.array([3, 0, 3, 20]), [1, -2],
                    torch.tensor([4, 2]), mask, np.array([], dtype=np.int64)):
            got, want = streamed[key], cached[key]
            assert type(got) is np.ndarray and got.flags.c_contiguous, key  # a fresh array, as advanced indexing
            np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(streamed.decoded(), cached)
        sub = streamed.take(mask)  # lazy: nothing decoded, nothing staged
        assert type(sub) is StreamingArray and len(sub) == mask.sum() and sub.staged == 0
        np.testing.assert_array_equal(sub[1:3], cached[mask][1:3])
    with pytest.raises(IndexError):
        streamed[N]
    with pytest.raises(TypeError, match="streams"):
        np.asarray(streamed)  # never a silent decode of every image


def test_streamed_array_prefetch_stages_one_batch(folder):
    from fashionlab.datasets import image_array, prefetched, take_rows

    root, names = folder
    cached = image_array(root, names, S, stream=False)
    streamed = image_array(root, names, S, stream=True, workers=1, prefetch=2)
    chunks = [np.arange(s, min(s + 5, N)) for s in range(0, N, 5)]
    assert prefetched(cached, chunks) is chunks  # the cache needs no prefetching
    for ids in prefetched(streamed, chunks):
        assert streamed.staged == len(ids)
        a = streamed[ids]
        np.testing.assert_array_equal(a, cached[ids])
        a[:] = 0  # a fresh array: the staged batch is not changed through it
        np.testing.assert_array_equal(streamed[ids[1:]], cached[ids[1:]])
    assert streamed.peak_staged == 5 and streamed.staged == 0
    np.testing.assert_array_equal(take_rows(cached, [2, 4]), cached[[2, 4]])
    np.testing.assert_array_equal(take_rows(streamed, [2, 4])[:], cached[[2, 4]])


def test_streamed_crops_are_the_cached_crops(folder):
    """Paper 06's detected crops (§5.2.1) cut from streamed scenes equal those cut from the in-memory ones."""
    import pickle

    from fashionlab.datasets import StreamingCrops, image_array
    from fashionlab.synth.outfit import square_crop

    root, names = folder
    scenes = image_array(root, names, S, layout="hwc", stream=True, workers=0)
    cached = image_array(root, names, S, layout="hwc", stream=False)
    scene_ids = np.array([0, 0, 5, 11, 5])
    boxes = np.array([[2, 3, 10, 12], [0, 0, 19, 19], [5.5, 1.2, 9.9, 18.0], [-3, 4, 8, 30], [1, 1, 2, 2]],
                     dtype=np.float32)
    want = np.stack([square_crop(cached[i], b, 9).transpose(2, 0, 1) for i, b in zip(scene_ids, boxes)])
    crops = StreamingCrops(scenes, scene_ids, boxes, 9)
    assert crops.shape == (5, 3, 9, 9)
    np.testing.assert_array_equal(crops[:], want)
    for ids in crops.prefetch([np.array([4, 1]), np.array([0, 2, 3])]):
        np.testing.assert_array_equal(crops[ids], want[ids])
    np.testing.assert_array_equal(crops.take([3, 0])[:], want[[3, 0]])
    again = pickle.loads(pickle.dumps(crops))  # what a spawned worker receives
    np.testing.assert_array_equal(again[2], want[2])


def test_streamed_array_errors_name_the_file(folder, tmp_path):
    from fashionlab.datasets import image_array

    root, names = folder
    arr = image_array(root, list(names) + ["gone.png"], S, stream=True, workers=1, source="instances_test.json")
    with pytest.raises(FileNotFoundError, match=r"gone\.png.*line 25 of instances_test\.json"):
        for ids in arr.prefetch([np.array([0]), np.array([N])]):
            arr[ids]
    with pytest.raises(FileNotFoundError, match=r"gone\.png"):
        image_array(root, ["gone.png"], S, stream=True, workers=0).take([0])[0]


# ----------------------------------------------------------------------------------------------------------
# papers 04 and 06 streamed: memory bounded by a batch, the same rows as the cache
# ----------------------------------------------------------------------------------------------------------
def _cached_and_streamed(tmp_path, monkeypatch, name, configs, tiny):
    """Run experiment ``name`` in quick mode with ``configs["quick"]`` = ``tiny``, first from the in-memory cache
    (``FASHIONLAB_STREAM=0``), then streamed (``=1``, one decoding worker), both training from scratch on the same
    rendered data. Returns both results and, for the streamed run, the most images ever staged (a prefetched
    batch) and the most decoded in one call in this process (outside the workers: what indexing decodes)."""
    from fashionlab import experiments
    from fashionlab.datasets import streaming

    monkeypatch.setenv("FASHIONLAB_DATA", str(tmp_path))
    monkeypatch.setenv("FASHIONLAB_PROGRESS", "0")
    monkeypatch.setenv("FASHIONLAB_RETRAIN", "1")  # the streamed run trains too, not loads the cached run's models
    monkeypatch.setenv("FASHIONLAB_WORKERS", "1")
    monkeypatch.setitem(configs, "quick", tiny)
    staged, decoded = [0], [0]
    stage, decoders = streaming._Staging._stage, {}

    def record_stage(self, ids, pixels):
        staged[0] = max(staged[0], len(ids))
        stage(self, ids, pixels)

    for cls in (streaming.StreamingTwoScaleImages, streaming.StreamingArray, streaming.StreamingCrops):
        def record_decode(self, ids, _decode=cls._decode):
            decoded[0] = max(decoded[0], len(np.asarray(ids).reshape(-1)))
            return _decode(self, ids)

        monkeypatch.setattr(cls, "_decode", record_decode)
    monkeypatch.setattr(streaming._Staging, "_stage", record_stage)
    out = []
    for stream in ("0", "1"):
        monkeypatch.setenv("FASHIONLAB_STREAM", stream)
        staged[0] = decoded[0] = 0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out.append(experiments.run(name, mode="quick", seed=0, out=None, progress=False))
    return out[0], out[1], staged[0], decoded[0]


def test_part_search_streamed_holds_a_batch_and_gives_the_cached_rows(tmp_path, monkeypatch):
    """Paper 04 (§4.3 jump detection, §6 training, §7 search, §7.5 regressor, §7.6 rates) streamed: no split's
    pixels in memory, at most one batch staged or decoded at once, and the rows of the in-memory run."""
    from fashionlab.experiments import paper04, paper04_data

    tiny = paper04.PartSearchConfig(num_images=160, designs=24, image_size=64, input_size=48, width=8, epochs=1,
                                    stage2_epochs=1, batch=16, regressor_images=8, regressor_epochs=2, rounds=2,
                                    hidden=32, dim=16)
    batch = 16  # every pass's batch: training, jump detection, signatures, regressor, the §7.6 timing sample
    monkeypatch.setattr(paper04_data.ShopSearchData, "JUMP_BATCH", batch)
    monkeypatch.setattr(paper04, "EVAL_BATCH", batch)
    monkeypatch.setattr(paper04, "RATE_IMAGES", batch)
    cached, streamed, staged, decoded = _cached_and_streamed(tmp_path, monkeypatch, "part-search",
                                                             paper04.PART_SEARCH_CONFIGS, tiny)
    d = streamed.data
    assert not cached.data.streams and torch.is_tensor(cached.data.images["test"])
    assert d.streams and all(not torch.is_tensor(v) for v in (*d.images.values(), *d.inputs.values()))
    assert min(len(d.labels[s]) for s in d.splits) > batch  # so a whole split would show
    assert 0 < staged <= batch and decoded <= batch
    assert all(src.peak_staged <= batch and src.staged == 0 for src in d.sources.values())
    assert streamed.rows == cached.rows


def test_hls_streamed_holds_a_batch_and_gives_the_cached_rows(tmp_path, monkeypatch):
    """Paper 06 (§3.2.1 detector, §3.2.2 stage-2 networks, §5.2.1 detected crops, Table 5) streamed: scenes and
    crops read batch by batch, at most one batch staged or decoded at once, and the rows of the in-memory run."""
    from fashionlab.datasets import StreamingArray, StreamingCrops
    from fashionlab.experiments import paper06
    from fashionlab.models import hls_pipeline

    tiny = paper06.HLSConfig(num_scenes=60, epochs=1, det_epochs=1, width=4, det_width=4, batch=16, det_batch=4,
                             hidden_dim=16, attention_units=8, fc_dim=16, embed_dim=4)
    monkeypatch.setattr(hls_pipeline, "DETECT_BATCH", 4)
    monkeypatch.setattr(hls_pipeline, "PREDICT_BATCH", 16)
    cached, streamed, staged, decoded = _cached_and_streamed(tmp_path, monkeypatch, "hls", paper06.HLS_CONFIGS,
                                                             tiny)
    d = streamed.data
    assert not cached.data.streams and isinstance(cached.data.scene_images["test"], np.ndarray)
    assert d.streams and all(isinstance(d.crops[s]["images"], StreamingArray) for s in d.crops)
    assert all(isinstance(v, StreamingArray) for v in d.scene_images.values())
    assert min(len(v) for v in d.scene_images.values()) > 4 and min(len(c["category"]) for c in d.crops.values()) > 16
    assert 0 < staged <= 16 and decoded <= 16
    assert streamed.rows == cached.rows
    # the detected crops (§5.2.1): a one-epoch detector finds nothing, so a perfect one's boxes (the truth)
    test = d.scenes["test"]
    perfect = [(b, np.ones(len(b), np.float32), t) for b, t in zip(test.boxes, test.object_types)]
    lazy = paper06.pipeline_crops(d, perfect, tiny.crop_size)
    held = paper06.pipeline_crops(cached.data, perfect, tiny.crop_size)
    assert isinstance(lazy["images"], StreamingCrops) and lazy["retention"] == held["retention"] == 1.0
    assert len(lazy["images"]) > 16
    np.testing.assert_array_equal(lazy["images"][:], held["images"])
    for k in ("category", "object_type", "scene", "box"):
        np.testing.assert_array_equal(lazy[k], held[k])
    method = paper06.METHODS[1]  # STL w/ HLS: both networks, the predicted category shared
    a = paper06.method_outputs(method, streamed.models[method], lazy)
    b = paper06.method_outputs(method, cached.models[method], held)
    assert all(np.array_equal(a[k], b[k]) for k in a)
