"""fashionlab.datasets: readers (docs/formats.md §5.1, §5.2), torch Datasets, triplet samplers.

Readers are tested on hand-written fixtures in the real formats (tests/fixtures, LF, CRLF and bare CR), on bad
input (each error must name the file and the 1-based line) and, when ../shared/realdata exists, on the real
split files. Images are generated here with PIL.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fashionlab.config import shared_realdata
from fashionlab.datasets import (
    AsenPPTripletSampler,
    AsenV1TripletSampler,
    AttributeImageDataset,
    DataFormatError,
    ImageLoadError,
    LabelIndex,
    Paper01TripletPool,
    RareValueError,
    TripletDataset,
    check_triplets,
    make_transform,
    read_asen_split,
    read_fashionai_labels,
    read_filenames,
    read_items,
    read_label_file,
    read_meta,
)
from fashionlab.datasets.images import IMAGENET_MEAN, IMAGENET_STD
from fashionlab.taxonomy import FASHIONAI, AttributeSchema

FIX = Path(__file__).parent / "fixtures"
TOY = AttributeSchema("Toy", ("collar_design", "sleeve_length"), (3, 4))


# ------------------------------------------------------------------------------------------------------------------
# fixtures themselves


def test_fixture_line_endings_are_as_intended():
    # guards against an editor or git normalising the fixtures (tests/fixtures/.gitattributes says -text)
    assert b"\r\n" in (FIX / "asen_flat/label_train.txt").read_bytes()
    assert b"\r\n" not in (FIX / "asen_flat/query_test.txt").read_bytes()
    assert (FIX / "asen_nested/Toy/filenames_valid.txt").read_bytes().endswith(b".jpg")  # no final newline
    cand = (FIX / "asen_nested/Toy/candidate_valid.txt").read_bytes()
    assert b"3\r1" in cand  # bare CR
    assert b"\r\n" in (FIX / "fashionai/valid/Annotations/label.csv").read_bytes()


# ------------------------------------------------------------------------------------------------------------------
# meta.json


def test_read_meta_flat_with_value_names():
    s = read_meta(FIX / "asen_flat/meta.json", dataset="Toy")
    assert s.name == "Toy"
    assert s.attributes == ("collar_design", "sleeve_length")
    assert s.num_values == (3, 4)
    assert s.value_name(1, 3) == "Long Sleeves"
    # a folder works too
    assert read_meta(FIX / "asen_flat").num_values == (3, 4)


def test_read_meta_nested_picks_dataset_and_lists_them_otherwise():
    path = FIX / "asen_nested/meta.json"
    s = read_meta(path, dataset="Toy")
    assert (s.name, s.attributes, s.num_values, s.values) == ("Toy", TOY.attributes, (3, 4), {})
    assert read_meta(path, dataset="other").num_values == (2,)  # case-insensitive fallback
    with pytest.raises(DataFormatError, match=r"meta\.json: meta file holds several datasets \['Toy', 'Other'\]"):
        read_meta(path)
    with pytest.raises(DataFormatError, match=r"no dataset 'DARN' in meta file; it holds \['Toy', 'Other'\]"):
        read_meta(path, dataset="DARN")


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"ATTRIBUTES": ["a"],\n "ATTRIBUTES_NUM": {"a": 2,}\n}', r"meta\.json:2: invalid JSON"),
        ('{"ATTRIBUTES": ["a", "b"], "ATTRIBUTES_NUM": {"a": 2}}', r"attribute 'b' has no entry in 'ATTRIBUTES_NUM'"),
        ('{"ATTRIBUTES": ["a"], "ATTRIBUTES_NUM": {"a": 0}}', r"value count of 'a' must be a positive integer"),
        ('{"ATTRIBUTES": ["a"]}', r"needs keys 'ATTRIBUTES' and 'ATTRIBUTES_NUM'"),
        ('{"ATTRIBUTES": ["a"], "ATTRIBUTES_NUM": {"a": 2}, "ATTRIBUTES_VALUES": {"a": ["x"]}}', r"2 values but 1 names"),
    ],
)
def test_read_meta_bad_input(tmp_path, text, message):
    p = tmp_path / "meta.json"
    p.write_text(text)
    with pytest.raises(DataFormatError, match=message) as e:
        read_meta(p)
    assert str(p) in str(e.value)


def test_read_meta_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"meta\.json \(attribute names and value counts\) not found: .*nope"):
        read_meta(tmp_path / "nope" / "meta.json")


# ------------------------------------------------------------------------------------------------------------------
# ASEN split files


def test_read_asen_split_flat_test_and_train_with_multipair_crlf_labels():
    s = read_asen_split(FIX / "asen_flat", "test")
    assert s.schema.num_values == (3, 4) and s.schema.values["collar_design"][1] == "Shirt Collar"
    assert s.filenames[0] == "images/test/collar_a.jpg" and len(s.filenames) == 6
    assert s.queries.dtype == np.int64 and s.queries.tolist() == [[4, 0, 1], [3, 1, 2]]
    assert s.candidates.shape == (4, 3) and s.candidates[-1].tolist() == [5, 1, 0]
    assert s.labels.shape == (0, 3) and s.labels.dtype == np.int64
    assert s.counts_per_attribute("candidates").tolist() == [2, 2]

    t = read_asen_split(FIX / "asen_flat", "train")
    assert t.queries.shape == (0, 3) and t.candidates.shape == (0, 3)
    assert all(not f.endswith("\r") for f in t.filenames)
    assert t.labels.tolist() == [
        [0, 0, 1], [1, 1, 2], [2, 0, 2], [2, 1, 3], [3, 1, 0], [4, 0, 1], [4, 1, 1], [5, 0, 0], [6, 1, 3], [7, 0, 2],
    ]


def test_read_asen_split_nested_meta_in_parent_crlf_bare_cr_and_trailing_blanks():
    s = read_asen_split(FIX / "asen_nested/Toy", "valid")
    assert s.schema.name == "Toy" and s.schema.num_values == (3, 4)
    assert s.filenames == ["pic/100/1_01_1.jpg", "pic/100/2_02_1.jpg", "pic/200/3_03_2.jpg", "pic/200/4_04_2.jpg",
                           "pic/300/5_05_3.jpg"]
    assert s.queries.tolist() == [[3, 1, 3], [4, 0, 0]]
    assert s.candidates.tolist() == [[0, 1, 3], [1, 0, 0], [2, 0, 2]]
    # an explicit schema or meta path also works
    assert read_asen_split(FIX / "asen_nested/Toy", "valid", meta=TOY).queries.shape == (2, 3)
    assert read_asen_split(FIX / "asen_nested/Toy", "valid", meta=FIX / "asen_nested/meta.json").schema.name == "Toy"


def test_read_label_file_alone_and_read_filenames():
    labels = read_label_file(FIX / "asen_flat/label_train.txt")
    assert labels.shape == (10, 3)
    with pytest.raises(DataFormatError, match=r"label_train\.txt:3: image id 2 out of range .* expected 0\.\.1"):
        read_label_file(FIX / "asen_flat/label_train.txt", num_images=2)
    assert len(read_filenames(FIX / "asen_nested/Toy/filenames_valid.txt")) == 5


def _copy(tmp_path, name):
    dst = tmp_path / name
    shutil.copytree(FIX / name, dst)
    return dst


# (fixture folder, split, file to overwrite, new content, expected message (regex), 1-based line in message)
BAD_SPLIT_FILES = [
    ("asen_flat", "test", "query_test.txt", "4 0 1\n3 1\n", r"malformed query file of the test split line: 2 field", 2),
    ("asen_flat", "test", "query_test.txt", "4 0 1\r\n3 1 2 7\r\n", r"4 field\(s\) '3 1 2 7'; expected '<image id>", 2),
    ("asen_flat", "test", "candidate_test.txt", "0 0 1\n1 0 2\n2 one 2\n", r"non-integer field 'one'", 3),
    ("asen_flat", "test", "candidate_test.txt", "0 0 1\n1 0 2.5\n", r"non-integer field '2\.5'", 2),
    ("asen_flat", "test", "query_test.txt", "4 0 1\n6 1 2\n", r"image id 6 out of range .* expected 0\.\.5 \(6 images", 2),
    ("asen_flat", "test", "query_test.txt", "-1 0 1\n", r"image id -1 out of range", 1),
    ("asen_flat", "test", "candidate_test.txt", "0 0 1\n1 2 0\n", r"attribute index 2 out of range .* 2 attributes", 2),
    ("asen_flat", "test", "candidate_test.txt", "0 0 1\n1 0 2\n2 1 4\n", r"value index 4 out of range for attribute 1 \('sleeve_length'\) .* expected 0\.\.3", 3),
    ("asen_flat", "test", "candidate_test.txt", "0 0 1\n\n1 0 2\n", r"blank line", 2),
    ("asen_flat", "test", "filenames_test.txt", "a.jpg\n\nb.jpg\nc.jpg\nd.jpg\ne.jpg\n", r"blank line inside an image file list", 2),
    ("asen_flat", "train", "label_train.txt", "0 0 1\r\n1 1 2 0\r\n", r"malformed training label file line: 4 field", 2),
    ("asen_flat", "train", "label_train.txt", "0 0 1\r\n1 1 2 0 3\r\n", r"value index 3 out of range for attribute 0 \('collar_design'\)", 2),
    ("asen_flat", "train", "label_train.txt", "0 0 1\r\n8 1 2\r\n", r"image id 8 out of range", 2),
    ("asen_nested/Toy", "valid", "query_valid.txt", "3 1 3\r\n4 0 x\r\n", r"non-integer field 'x'", 2),
    ("asen_nested/Toy", "valid", "candidate_valid.txt", "0 1 3\r1 0 0\r2 0 3\r", r"value index 3 out of range", 3),
]


@pytest.mark.parametrize("folder, split, fname, content, message, line", BAD_SPLIT_FILES)
def test_read_asen_split_bad_input_names_file_and_line(tmp_path, folder, split, fname, content, message, line):
    root = _copy(tmp_path, folder.split("/")[0]) / "/".join(folder.split("/")[1:])
    (root / fname).write_bytes(content.encode())
    with pytest.raises(DataFormatError, match=message) as e:
        read_asen_split(root, split)
    msg = str(e.value)
    assert f"{root / fname}:{line}:" in msg, msg
    assert e.value.line == line and e.value.path.endswith(fname)


def test_query_that_is_also_a_candidate_is_an_error_unless_allowed(tmp_path):
    root = _copy(tmp_path, "asen_flat")
    (root / "candidate_test.txt").write_text("0 0 1\n4 0 2\n")
    with pytest.raises(DataFormatError) as e:
        read_asen_split(root, "test")
    msg = str(e.value)
    assert msg.startswith(f"{root / 'query_test.txt'}:1: image id 4 (images/test/collar_c.jpg) is a query and also a "
                          f"candidate (line 2 of candidate_test.txt)"), msg
    assert read_asen_split(root, "test", check_disjoint=False).candidates.shape == (2, 3)


@pytest.mark.parametrize("fname, what", [("candidate_test.txt", "candidate file of the test split"),
                                         ("filenames_test.txt", "image file list of the test split"),
                                         ("query_test.txt", "query file of the test split")])
def test_missing_split_file_names_path_and_what(tmp_path, fname, what):
    root = _copy(tmp_path, "asen_flat")
    (root / fname).unlink()
    with pytest.raises(FileNotFoundError) as e:
        read_asen_split(root, "test")
    assert what in str(e.value) and str(root / fname) in str(e.value)


def test_missing_train_file_list_explains_where_it_comes_from(tmp_path):
    root = _copy(tmp_path, "asen_flat")
    (root / "filenames_train.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"filenames_train\.txt.*ships with the ASEN data.*read_label_file"):
        read_asen_split(root, "train")
    assert read_label_file(root / "label_train.txt").shape == (10, 3)  # labels alone still read


def test_missing_meta_folder_and_unknown_split(tmp_path):
    root = tmp_path / "DS"
    root.mkdir()
    (root / "filenames_test.txt").write_text("a.jpg\n")
    with pytest.raises(FileNotFoundError, match=r"meta\.json .* not found for dataset folder .*DS"):
        read_asen_split(root, "test")
    with pytest.raises(FileNotFoundError, match="ASEN dataset folder not found"):
        read_asen_split(tmp_path / "nothing", "test")
    with pytest.raises(ValueError, match="unknown split 'val'"):
        read_asen_split(FIX / "asen_flat", "val")


def test_nested_meta_without_the_datasets_key(tmp_path):
    root = _copy(tmp_path, "asen_nested") / "Toy"
    renamed = root.parent / "Mystery"
    root.rename(renamed)
    with pytest.raises(DataFormatError, match=r"no dataset 'Mystery' in meta file; it holds \['Toy', 'Other'\]"):
        read_asen_split(renamed, "valid")


def test_read_items_standalone():
    rows = read_items(FIX / "asen_nested/Toy/candidate_valid.txt", schema=TOY, num_images=5)
    assert rows.shape == (3, 3)


# ------------------------------------------------------------------------------------------------------------------
# FashionAI label.csv


def test_read_fashionai_labels_with_maybe():
    lab = read_fashionai_labels(FIX / "fashionai/valid/Annotations/label.csv")
    assert len(lab) == 6
    assert lab.paths[0] == "Images/collar_design_labels/0a1b2c.jpg"
    assert lab.attributes == ["collar_design", "sleeve_length", "skirt_length", "neckline_design", "pant_length",
                              "coat_length"]
    assert lab.attribute_index.tolist() == [FASHIONAI.index(a) for a in lab.attributes]
    assert lab.values.tolist() == [1, 4, 0, 7, 5, 2]
    assert lab.maybe == [(), (3,), (), (4, 8), (), (3,)]
    assert lab.has_maybe.tolist() == [False, True, False, True, False, True]
    assert lab.items.tolist()[1] == [1, 1, 4]
    assert lab.line.tolist() == [1, 2, 3, 4, 5, 6]


BAD_CSV = [
    ("Images/a.jpg,collar_design_labels,nynnn\nImages/b.jpg,hat_size_labels,nyn\n", r"unknown attribute 'hat_size_labels'", 2),
    ("Images/a.jpg,collar_design_labels,nynnnn\n", r"'nynnnn' has 6 characters; collar_design has 5 values", 1),
    ("Images/a.jpg,collar_design_labels,nynnn\nImages/b.jpg,collar_design_labels,nynyn\n", r"has 2 'y'; expected exactly one", 2),
    ("Images/a.jpg,collar_design_labels,nnmnn\n", r"has 0 'y'; expected exactly one", 1),
    ("Images/a.jpg,collar_design_labels,nyxnn\n", r"characters \['x'\]; expected only y, n, m", 1),
    ("Images/a.jpg,collar_design_labels\n", r"2 comma-separated field\(s\).*expected 3", 1),
    ("Images/a.jpg,collar_design_labels,nynnn\r\n\r\nImages/b.jpg,collar_design_labels,nynnn\r\n", r"blank line", 2),
]


@pytest.mark.parametrize("content, message, line", BAD_CSV)
def test_read_fashionai_labels_bad_input(tmp_path, content, message, line):
    p = tmp_path / "label.csv"
    p.write_bytes(content.encode())
    with pytest.raises(DataFormatError, match=message) as e:
        read_fashionai_labels(p)
    assert f"{p}:{line}:" in str(e.value)


def test_read_fashionai_labels_with_other_schema_and_missing(tmp_path):
    p = tmp_path / "label.csv"
    p.write_text("Images/a.jpg,sleeve_length_labels,nnym\n")
    lab = read_fashionai_labels(p, schema=TOY)
    assert lab.values.tolist() == [2] and lab.maybe == [(3,)] and lab.attribute_index.tolist() == [1]
    with pytest.raises(FileNotFoundError, match=r"FashionAI label\.csv not found: .*nothing\.csv"):
        read_fashionai_labels(tmp_path / "nothing.csv")


# ------------------------------------------------------------------------------------------------------------------
# torch Datasets


COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255), (255, 0, 255)]


@pytest.fixture
def image_split(tmp_path):
    """The flat test split copied to tmp with a tiny solid-colour image per file (non-square, 24x16)."""
    root = _copy(tmp_path, "asen_flat")
    split = read_asen_split(root, "test")
    for i, name in enumerate(split.filenames):
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (24, 16), COLOURS[i]).save(p, quality=100 if p.suffix == ".jpg" else None)
    return split


def _expected(colour):
    c = torch.tensor(colour, dtype=torch.float32) / 255
    return (c - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)


def test_attribute_image_dataset_returns_right_tensors(image_split):
    ds = AttributeImageDataset.from_split(image_split, "candidates", transform=make_transform(8, train=False))
    assert len(ds) == 4
    for row, (img_id, attr, value) in enumerate(image_split.candidates.tolist()):
        x, a, v, i = ds[row]
        assert x.shape == (3, 8, 8) and x.dtype == torch.float32
        assert (a, v, i) == (attr, value, img_id)
        mean = x.mean(dim=(1, 2))
        assert torch.allclose(mean, _expected(COLOURS[img_id]), atol=0.05), (mean, COLOURS[img_id])
    # default transform: ToTensor at the original size
    x, *_ = AttributeImageDataset(image_split.root, image_split.filenames, image_split.queries)[0]
    assert x.shape == (3, 16, 24) and 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    # batches through a DataLoader
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch[0].shape == (4, 3, 8, 8) and batch[3].tolist() == image_split.candidates[:, 0].tolist()


def test_make_transform_keeps_aspect_and_flips_only_in_training(tmp_path):
    # 40x20: a red stripe x < 6, rest blue. Resize(10) -> 20x10 (stripe x < 3), CenterCrop(10) keeps x in [5, 15)
    im = Image.new("RGB", (40, 20), (0, 0, 255))
    im.paste((255, 0, 0), (0, 0, 6, 20))
    x = make_transform(10, train=False, normalize=False)(im)
    assert x.shape == (3, 10, 10)
    assert float(x[0].max()) < 0.1 and float(x[2].min()) > 0.9  # no red left: centre crop, not squash
    # asymmetric square image: left half red, right half blue
    sq = Image.new("RGB", (16, 16), (0, 0, 255))
    sq.paste((255, 0, 0), (0, 0, 8, 16))
    ev = make_transform(8, train=False, normalize=False)
    e0 = ev(sq)
    assert all(torch.equal(ev(sq), e0) for _ in range(10))
    assert float(e0[0, :, 0].mean()) > 0.9  # red on the left
    torch.manual_seed(0)
    tr = make_transform(8, train=True, normalize=False)
    outs = {bool(float(tr(sq)[0, :, 0].mean()) > 0.5) for _ in range(30)}
    assert outs == {True, False}
    with pytest.raises(ValueError):
        make_transform(0, train=False)


def test_cache_serves_decoded_images_without_rereading(image_split):
    ds = AttributeImageDataset.from_split(image_split, "queries", transform=make_transform(8, False), cache=True)
    first = ds[0][0]
    (image_split.root / image_split.filenames[int(image_split.queries[0, 0])]).unlink()
    assert torch.equal(ds[0][0], first)  # from the cache
    ds2 = AttributeImageDataset.from_split(image_split, "candidates", cache=False).preload()
    assert ds2.cache and len(ds2._cache) == 4


def test_missing_image_error_names_file_and_split_lines(image_split):
    img_id = int(image_split.candidates[2, 0])  # line 3 of candidate_test.txt
    path = image_split.root / image_split.filenames[img_id]
    path.unlink()
    ds = AttributeImageDataset.from_split(image_split, "candidates", transform=make_transform(8, False))
    with pytest.raises(FileNotFoundError) as e:
        ds[2]
    msg = str(e.value)
    assert str(path) in msg
    assert f"line {img_id + 1} of {image_split.files['filenames']}" in msg
    assert "line 3 of" in msg and "candidate_test.txt" in msg
    with pytest.raises(FileNotFoundError, match=r"1 of 4 images missing"):
        ds.verify()


@pytest.mark.parametrize("payload", [b"this is not a jpeg", "truncated"])
def test_corrupt_image_error_names_file(image_split, payload):
    img_id = int(image_split.queries[1, 0])
    path = image_split.root / image_split.filenames[img_id]
    if payload == "truncated":
        Image.new("RGB", (64, 64), (10, 20, 30)).save(path, quality=90)
        payload = path.read_bytes()[:200]
    path.write_bytes(payload)
    ds = AttributeImageDataset.from_split(image_split, "queries", transform=make_transform(8, False))
    with pytest.raises(ImageLoadError) as e:
        ds[1]
    assert str(path) in str(e.value) and "line 2 of" in str(e.value) and "query_test.txt" in str(e.value)
    assert isinstance(e.value, OSError)


def test_dataset_rejects_bad_items(image_split):
    with pytest.raises(ValueError, match=r"shape \(n, 3\)"):
        AttributeImageDataset(image_split.root, image_split.filenames, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="image id 9, outside the 6 filenames"):
        AttributeImageDataset(image_split.root, image_split.filenames, [[9, 0, 0]])


def test_triplet_dataset_from_sampler_and_loader_fn(image_split):
    ds = AttributeImageDataset.from_split(image_split, "candidates", transform=make_transform(8, False))
    labels = np.array([[0, 0, 1], [1, 0, 1], [2, 0, 2], [3, 0, 2], [4, 1, 0], [5, 1, 0], [1, 1, 3], [2, 1, 3]])
    sampler = AsenPPTripletSampler(labels, TOY, num_triplets=12, seed=3, skip_rare=True)
    assert [str(s) for s in sampler.skipped] == ["collar_design=0 (0 images)", "sleeve_length=1 (0 images)",
                                                 "sleeve_length=2 (0 images)"]
    tds = TripletDataset(ds, sampler)
    assert len(tds) == 12
    a, p, n, attr = tds[0]
    ta, tp, tn, tattr = tds.triplets[0].tolist()
    assert attr == tattr and a.shape == (3, 8, 8)
    assert torch.allclose(a.mean(dim=(1, 2)), _expected(COLOURS[ta]), atol=0.05)
    assert torch.allclose(n.mean(dim=(1, 2)), _expected(COLOURS[tn]), atol=0.05)
    before = tds.triplets.copy()
    tds.set_epoch(1)
    assert not np.array_equal(before, tds.triplets)
    tds.set_epoch(0)
    assert np.array_equal(before, tds.triplets)
    # any callable image id -> tensor
    fn = TripletDataset(lambda i: torch.full((1,), float(i)), [[1, 2, 3, 0]])
    assert [float(t) for t in fn[0][:3]] == [1.0, 2.0, 3.0] and fn[0][3] == 0
    with pytest.raises(RuntimeError, match="needs a sampler"):
        fn.set_epoch(1)
    with pytest.raises(ValueError, match=r"shape \(n, 4\)"):
        TripletDataset(ds, np.zeros((3, 3)))


# ------------------------------------------------------------------------------------------------------------------
# samplers


def _toy_labels(seed=0, sizes=((40, 5, 30), (8, 60, 3, 20))):
    """Labels (image id, attr, value) with imbalanced value counts; ids unique per row, plus some multi-attribute images."""
    rows, next_id = [], 0
    for a, counts in enumerate(sizes):
        for v, c in enumerate(counts):
            for _ in range(c):
                rows.append((next_id, a, v))
                next_id += 1
    rows = np.array(rows, dtype=np.int64)
    # a few images labelled for both attributes (multi-pair lines)
    extra = np.array([[0, 1, 0], [1, 1, 1], [2, 1, 3]], dtype=np.int64)
    return np.concatenate([rows, extra])


SCHEMA = AttributeSchema("S", ("a0", "a1"), (3, 4))


def _check_constraints(t, labels):
    lookup = {(int(i), int(a)): int(v) for i, a, v in labels}
    for an, po, ne, at in t.tolist():
        assert lookup[(an, at)] == lookup[(po, at)]
        assert lookup[(ne, at)] != lookup[(an, at)]
        assert an != po


@pytest.mark.parametrize("cls", [AsenPPTripletSampler, AsenV1TripletSampler])
def test_sampler_constraints_determinism_and_epochs(cls):
    labels = _toy_labels()
    s = cls(labels, SCHEMA, num_triplets=2000, seed=7)
    t = s.triplets(0)
    assert t.shape == (2000, 4) and t.dtype == np.int64
    _check_constraints(t, labels)
    check_triplets(t, labels)
    assert np.array_equal(t, cls(labels, SCHEMA, num_triplets=2000, seed=7).triplets(0))  # same (seed, epoch)
    assert not np.array_equal(t, s.triplets(1))  # other epoch
    assert not np.array_equal(t, cls(labels, SCHEMA, num_triplets=2000, seed=8).triplets(0))  # other seed
    assert np.array_equal(s.triplets(5), s.triplets(5))  # resumable: no hidden state
    # attributes roughly uniform
    frac = np.bincount(t[:, 3], minlength=2) / len(t)
    assert np.all(np.abs(frac - 0.5) < 0.05)


def test_asenpp_values_uniform_and_distinct():
    labels = _toy_labels()
    t = AsenPPTripletSampler(labels, SCHEMA, num_triplets=40_000, seed=1).triplets(0)
    lookup = {(int(i), int(a)): int(v) for i, a, v in labels}
    vp = np.array([lookup[(x, a)] for x, a in zip(t[:, 0].tolist(), t[:, 3].tolist())])
    vn = np.array([lookup[(x, a)] for x, a in zip(t[:, 2].tolist(), t[:, 3].tolist())])
    assert np.all(vp != vn)
    a1 = t[:, 3] == 1
    # vp uniform over the 4 values (class-balanced, despite counts 8/60/3/20)
    freq = np.bincount(vp[a1], minlength=4) / a1.sum()
    assert np.all(np.abs(freq - 0.25) < 0.02), freq
    # ordered pairs (vp, vn) uniform over the 12 pairs
    pairs = np.bincount(vp[a1] * 4 + vn[a1], minlength=16)
    assert (pairs > 0).sum() == 12


def test_asen_v1_value_uniform_and_negative_uniform_over_images():
    labels = _toy_labels()
    t = AsenV1TripletSampler(labels, SCHEMA, num_triplets=40_000, seed=2).triplets(0)
    lookup = {(int(i), int(a)): int(v) for i, a, v in labels}
    a0 = t[:, 3] == 0
    v = np.array([lookup[(x, 0)] for x in t[a0, 0].tolist()])
    freq = np.bincount(v, minlength=3) / a0.sum()
    assert np.all(np.abs(freq - 1 / 3) < 0.02), freq
    # for v == 0 (40 images) negatives come from values 1 (5 images) and 2 (30 images) in proportion 5:30
    vn = np.array([lookup[(x, 0)] for x in t[a0, 2][v == 0].tolist()])
    assert abs((vn == 1).mean() - 5 / 35) < 0.03


@pytest.mark.parametrize("cls", [AsenPPTripletSampler, AsenV1TripletSampler])
def test_rare_value_is_an_error_or_skipped(cls):
    labels = _toy_labels(sizes=((40, 1, 30), (8, 60, 3, 20)))
    with pytest.raises(RareValueError, match=r"attribute 'a0' \(index 0\) value 1 has 1 image; .*skip_rare=True"):
        cls(labels, SCHEMA, num_triplets=10)
    s = cls(labels, SCHEMA, num_triplets=5000, seed=0, skip_rare=True)
    assert [(x.attribute_name, x.value, x.count) for x in s.skipped] == [("a0", 1, 1)]
    t = s.triplets(0)
    _check_constraints(t, labels)
    lookup = {(int(i), int(a)): int(v) for i, a, v in labels}
    anchors0 = [lookup[(x, 0)] for x in t[t[:, 3] == 0, 0].tolist()]
    assert 1 not in anchors0
    # a value with no image at all is also an error (ASEN v1 would loop forever on it)
    full = _toy_labels()
    empty = full[~((full[:, 1] == 1) & (full[:, 2] == 2))]
    with pytest.raises(RareValueError, match=r"attribute 'a1' \(index 1\) value 2 has 0 images"):
        cls(empty, SCHEMA, num_triplets=10)


def test_sampler_rejects_conflicting_labels_and_reports_empty_attributes():
    labels = np.array([[0, 0, 0], [0, 0, 1], [1, 0, 1]])
    with pytest.raises(ValueError, match=r"image id 0 has several values \[0, 1\] for attribute 0"):
        LabelIndex(labels, (2,))
    with pytest.raises(ValueError, match="out of range of the schema"):
        LabelIndex([[0, 0, 5]], (2,))
    # attribute a0 only: a1 has no labels -> skipped with skip_rare
    only0 = _toy_labels()
    only0 = only0[only0[:, 1] == 0]
    s = AsenPPTripletSampler(only0, SCHEMA, num_triplets=100, skip_rare=True)
    assert s.skipped_attributes == ["a1"] and set(s.triplets(0)[:, 3].tolist()) == {0}
    with pytest.raises(RareValueError):
        AsenPPTripletSampler(only0, SCHEMA, num_triplets=100)


def test_sampler_100k_is_fast_enough():
    # speed sanity (not a timed assertion): 100k triplets per epoch, the ASEN setting
    rng = np.random.default_rng(0)
    n = 150_000
    labels = np.stack([np.arange(n), rng.integers(0, 8, n), np.zeros(n, dtype=np.int64)], axis=1)
    labels[:, 2] = rng.integers(0, np.array(FASHIONAI.num_values)[labels[:, 1]])
    for cls in (AsenPPTripletSampler, AsenV1TripletSampler):
        s = cls(labels, FASHIONAI, num_triplets=100_000, seed=0)
        t0 = time.perf_counter()
        t = s.triplets(0)
        elapsed = time.perf_counter() - t0
        assert t.shape == (100_000, 4)
        check_triplets(t, labels)
        print(f"{cls.__name__}: 100k triplets in {elapsed * 1000:.1f} ms")


def test_paper01_pool_every_image_an_anchor_once_and_no_duplicates():
    labels = _toy_labels()
    pool = Paper01TripletPool(labels, SCHEMA, seed=0)
    t = pool.triplets()
    assert t.shape == (len(labels), 4) and len(pool) == len(labels)
    _check_constraints(t, labels)
    # every labelled (image, attribute) is the anchor of exactly one triplet
    assert sorted(map(tuple, t[:, [0, 3]].tolist())) == sorted(map(tuple, labels[:, [0, 1]].tolist()))
    assert len(np.unique(t, axis=0)) == len(t)  # "never exactly identical"
    # negatives drawn without replacement from pool2: for value a0=2 (30 images) pool2 has 45 images -> no repeats
    lookup = {(int(i), int(a)): int(v) for i, a, v in labels}
    sel = [r for r in t.tolist() if r[3] == 0 and lookup[(r[0], 0)] == 2]
    assert len(sel) == 30 and len({r[2] for r in sel}) == 30
    # a1 value 1 (61 images incl. one multi-attribute) vs 33 others: pool2 exhausted and refilled evenly
    sel = [r[2] for r in t.tolist() if r[3] == 1 and lookup[(r[0], 1)] == 1]
    counts = np.unique(sel, return_counts=True)[1]
    assert len(sel) == 61 and len(counts) == 33 and counts.min() >= 1 and counts.max() <= 2
    # deterministic, fixed across epochs unless asked
    assert np.array_equal(t, Paper01TripletPool(labels, SCHEMA, seed=0).triplets(3))
    assert not np.array_equal(t, Paper01TripletPool(labels, SCHEMA, seed=1).triplets())
    re = Paper01TripletPool(labels, SCHEMA, seed=0, resample_each_epoch=True)
    assert np.array_equal(re.triplets(0), t) and not np.array_equal(re.triplets(1), t)
    train, val = pool.split()
    assert len(train) == round(0.7 * len(t)) and len(train) + len(val) == len(t)
    assert np.array_equal(np.concatenate([train, val]), t)


def test_paper01_pool_rare_values():
    labels = _toy_labels(sizes=((40, 1, 30), (8, 60, 3, 20)))
    with pytest.raises(RareValueError, match=r"'a0' \(index 0\) value 1 has 1 image"):
        Paper01TripletPool(labels, SCHEMA)
    pool = Paper01TripletPool(labels, SCHEMA, skip_rare=True)
    assert len(pool.triplets()) == len(labels) - 1
    assert [(x.attribute_name, x.value) for x in pool.skipped] == [("a0", 1)]
    # empty values are fine for the pool (they simply give no anchors)
    no_v2 = labels[~((labels[:, 1] == 1) & (labels[:, 2] == 2))]
    assert len(Paper01TripletPool(no_v2, SCHEMA, skip_rare=True).triplets()) == len(no_v2) - 1


# ------------------------------------------------------------------------------------------------------------------
# real split files (../shared/realdata); skipped when absent


REAL = shared_realdata()
realdata = pytest.mark.skipif(REAL is None, reason="../shared/realdata not present")


@pytest.mark.realdata
@realdata
def test_real_fashionai_test_split():
    s = read_asen_split(REAL / "zhengguorong_asenpp/data/FashionAI", "test")  # CRLF, nested meta in parent
    assert s.schema.name == "FashionAI" and s.schema.num_values == FASHIONAI.num_values
    assert s.schema.attributes == FASHIONAI.attributes
    assert (len(s.filenames), len(s.queries), len(s.candidates)) == (18_000, 3_600, 14_400)
    assert s.counts_per_attribute("queries").tolist() == [422, 623, 535, 422, 341, 289, 703, 265]
    assert not any(f.endswith("\r") for f in s.filenames)
    assert s.queries[0].tolist() == [13924, 6, 0]
    # every image's folder name matches its attribute (docs/formats.md §5.1)
    items = np.concatenate([s.queries, s.candidates])
    for i, a, _ in items[::97].tolist():
        assert f"/{FASHIONAI.attributes[a]}_labels/" in s.filenames[i]
    # the Maryeon copy (LF, flat meta with value names) holds the same lists
    m = read_asen_split(REAL / "Maryeon_asen/data", "test")
    assert np.array_equal(m.queries, s.queries) and np.array_equal(m.candidates, s.candidates)
    assert m.schema.num_values == FASHIONAI.num_values and m.schema.values["skirt_length"][1] == "Short Length"


@pytest.mark.realdata
@realdata
@pytest.mark.parametrize("ds, n_files, n_q, n_c", [("DARN", 21_461, 4_293, 17_168),
                                                   ("DeepFashion", 27_625, 5_525, 22_100)])
def test_real_darn_deepfashion_splits(ds, n_files, n_q, n_c):
    for split in ("valid", "test"):
        s = read_asen_split(REAL / "zhengguorong_asenpp/data" / ds, split)
        assert (len(s.filenames), len(s.queries), len(s.candidates)) == (n_files, n_q, n_c)
        assert s.schema.name == ds
    assert read_meta(REAL / "zhengguorong_asenpp/data/meta.json", ds).num_values == s.schema.num_values
    if ds == "DARN":  # no final newline: the last file still counts
        assert s.filenames[-1].endswith(".jpg") and s.queries[0].tolist() == [17168, 3, 1]


@pytest.mark.realdata
@realdata
def test_real_fashionai_train_labels_and_missing_train_list():
    root = REAL / "zhengguorong_asenpp/data/FashionAI"
    with pytest.raises(FileNotFoundError, match="filenames_train.txt"):
        read_asen_split(root, "train")
    labels = read_label_file(root / "label_train.txt", schema=FASHIONAI)
    assert labels.shape == (144_335, 3) and labels[:3].tolist() == [[0, 7, 3], [1, 1, 7], [2, 4, 1]]
    assert np.array_equal(labels[:, 0], np.arange(144_335))
    t = AsenPPTripletSampler(labels, FASHIONAI, num_triplets=100_000, seed=0).triplets(0)
    check_triplets(t, labels)


@pytest.mark.realdata
@realdata
@pytest.mark.parametrize("split", ["valid", "test"])
def test_real_label_csv_agrees_with_query_candidate_values(split):
    lab = read_fashionai_labels(REAL / f"Maryeon_asen/data/fashionAI/{split}/Annotations/label.csv")
    assert len(lab) == 18_000
    assert int(lab.has_maybe.sum()) == {"valid": 970, "test": 951}[split]
    by_name = {p: (a, v) for p, a, v in zip(lab.paths, lab.attribute_index.tolist(), lab.values.tolist())}
    for root in ("Maryeon_asen/data", "zhengguorong_asenpp/data/FashionAI"):
        s = read_asen_split(REAL / root, split)
        items = np.concatenate([s.queries, s.candidates])
        assert len(items) == 18_000
        # file names differ by prefix ("test/Images/..." vs "fashionAI_attributes_train2/Images/...")
        mismatches = [
            (s.filenames[i], (a, v)) for i, a, v in items.tolist()
            if by_name["Images/" + s.filenames[i].split("/Images/", 1)[1]] != (a, v)
        ]
        assert mismatches == []  # docs/formats.md §5.2: value index = position of 'y' for all rows
