"""Detection readers (fashionlab.datasets.detection): COCO detection JSON and DeepFashion2 per-image JSON
(docs/formats.md §5.4), on the hand-written fixtures in tests/fixtures/deepfashion2 and tests/fixtures/coco."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from fashionlab.datasets import (
    DF2_CATEGORIES,
    DF2_OBJECT_TYPES,
    OBJECT_TYPES,
    DataFormatError,
    DetectionDataset,
    read_coco_detection,
    read_deepfashion2,
    to_coco,
)

pytestmark = pytest.mark.usefixtures("one_thread")

FIX = Path(__file__).parent / "fixtures"
DF2 = FIX / "deepfashion2" / "train"
COCO_EXT = FIX / "coco" / "instances_train.json"
COCO_PLAIN = FIX / "coco" / "instances_plain.json"

# hand-checked expectations for the DeepFashion2 fixture (= the COCO fixture with extensions)
CATS = ("short sleeve top", "long sleeve top", "sling", "shorts", "trousers", "skirt", "vest dress", "sling dress",
        "sneaker")  # ordered by category_id 1, 2, 6, 7, 8, 9, 12, 13, 14
ATTRS = ("denim", "floral", "leather", "sleeveless", "striped")
BOXES_1 = [[1, 0, 7, 5], [2, 4, 9, 8]]
BOXES_2 = [[0, 0, 4, 5], [4, 5, 8, 10], [8, 8, 10, 10], [10, 0, 16, 10], [0, 5, 3, 10], [4, 0, 8, 4],
           [12, 8, 14, 10], [-0.5, 1, 3, 3], [5, 6, 7, 8], [9, 1, 15, 9.5]]  # item1, item2, ..., item10
TYPES_2 = [0, 1, 3, 2, 1, 0, 3, 0, 1, 2]
CATS_2 = [1, 5, 8, 6, 4, 0, 8, 2, 3, 7]
ATTRS_2 = [[4], [], [2], [1, 3], [0], [1], [], [3], [0], [1]]


def _multi_hot(rows, a=len(ATTRS)):
    out = np.zeros((len(rows), a), np.uint8)
    for k, cols in enumerate(rows):
        out[k, cols] = 1
    return out


def assert_same(a: DetectionDataset, b: DetectionDataset, applicable: bool = True) -> None:
    assert a.files == b.files
    np.testing.assert_array_equal(a.image_ids, b.image_ids)
    np.testing.assert_array_equal(a.sizes, b.sizes)
    assert a.type_names == b.type_names
    assert a.category_names == b.category_names
    assert a.attribute_names == b.attribute_names
    for name in ("boxes", "object_types", "categories", "attributes"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            assert len(x) == len(y)
            for u, v in zip(x, y):
                assert u.dtype == v.dtype and u.shape == v.shape, name
                np.testing.assert_array_equal(u, v, err_msg=name)
    if a.category_types is not None or b.category_types is not None:
        np.testing.assert_array_equal(a.category_types, b.category_types)
    if applicable:
        assert (a.applicable is None) == (b.applicable is None)
        if a.applicable is not None:
            np.testing.assert_array_equal(a.applicable, b.applicable)


# ----------------------------------------------------------------------------------------------------------------
# the fixtures parse to the hand-checked arrays


def test_constants():
    assert len(DF2_CATEGORIES) == 13 and DF2_CATEGORIES[0] == "short sleeve top" and DF2_CATEGORIES[12] == "sling dress"
    assert OBJECT_TYPES == ("upper body", "lower body", "full body", "footwear")
    assert set(DF2_OBJECT_TYPES) == set(DF2_CATEGORIES)
    by_type = {t: [c for c in DF2_CATEGORIES if DF2_OBJECT_TYPES[c] == t] for t in OBJECT_TYPES}
    assert by_type["upper body"] == ["short sleeve top", "long sleeve top", "short sleeve outwear",
                                     "long sleeve outwear", "vest", "sling"]
    assert by_type["lower body"] == ["shorts", "trousers", "skirt"]
    assert by_type["full body"] == ["short sleeve dress", "long sleeve dress", "vest dress", "sling dress"]
    assert by_type["footwear"] == []  # paper 06, Table 1: DF2 has no footwear


def test_deepfashion2_fixture():
    ds = read_deepfashion2(DF2)
    assert len(ds) == 3 and ds.num_objects == 12
    assert ds.files == ["000001.jpg", "000002.jpg", "000010.jpg"]
    assert ds.image_root == DF2 / "image" and ds.source == DF2
    assert ds.image_path(1) == DF2 / "image" / "000002.jpg" and ds.image_path(1).is_file()
    assert ds.image_ids.dtype == np.int64 and ds.image_ids.tolist() == [1, 2, 10]
    assert ds.sizes.tolist() == [[12, 8], [16, 10], [6, 4]]  # from the JPEG headers
    assert ds.type_names == OBJECT_TYPES
    assert ds.category_names == CATS
    assert ds.attribute_names == ATTRS
    assert ds.category_types.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 3]
    assert ds.applicable is None
    for b in ds.boxes:
        assert b.dtype == np.float32 and b.shape[1] == 4
    # 000001.json: real-DF2-like, no extension keys: types from Table 1, no attributes
    np.testing.assert_array_equal(ds.boxes[0], BOXES_1)
    assert ds.object_types[0].tolist() == [0, 1] and ds.object_types[0].dtype == np.int64
    assert ds.categories[0].tolist() == [0, 4] and ds.categories[0].dtype == np.int64
    assert ds.attributes[0].dtype == np.uint8 and ds.attributes[0].shape == (2, 5) and not ds.attributes[0].any()
    # 000002.json: ten items written in string order item1, item10, item2, ...: read in numeric order
    np.testing.assert_array_equal(ds.boxes[1], BOXES_2)
    assert ds.object_types[1].tolist() == TYPES_2
    assert ds.categories[1].tolist() == CATS_2
    np.testing.assert_array_equal(ds.attributes[1], _multi_hot(ATTRS_2))
    # 000010.json: no items, kept with empty arrays
    assert ds.boxes[2].shape == (0, 4) and ds.object_types[2].shape == (0,) and ds.categories[2].shape == (0,)
    assert ds.attributes[2].shape == (0, 5)
    r = repr(ds)
    assert r.startswith("DetectionDataset(3 images, 12 objects (upper body 4, lower body 4, full body 2, footwear 2)")
    assert "source='tests/fixtures/deepfashion2/train'" in r and str(DF2.resolve()) not in r  # no machine path


def test_deepfashion2_real_only(tmp_path):
    """Only the real-DF2-like file: no attributes at all, categories from the file, default and custom maps."""
    d = tmp_path / "val"
    (d / "annos").mkdir(parents=True)
    shutil.copy(DF2 / "annos" / "000001.json", d / "annos")
    ds = read_deepfashion2(d, image_dir=DF2 / "image")
    assert ds.attributes is None and ds.attribute_names is None
    assert ds.category_names == ("short sleeve top", "trousers")
    assert ds.object_types[0].tolist() == [0, 1]
    assert ds.image_root == DF2 / "image"
    ds = read_deepfashion2(d, image_dir=DF2 / "image",
                           type_map={"short sleeve top": "full body", "trousers": "lower body"})
    assert ds.object_types[0].tolist() == [2, 1] and ds.category_types.tolist() == [2, 1]
    ds = read_deepfashion2(d, image_dir=DF2 / "image", category_names=DF2_CATEGORIES)
    assert ds.category_names == DF2_CATEGORIES and ds.categories[0].tolist() == [0, 7]
    assert ds.category_types.tolist() == [0] * 6 + [1] * 3 + [2] * 4


def test_deepfashion2_fixed_attribute_names():
    names = ("striped", "sleeveless", "leather", "floral", "denim", "unused")
    ds = read_deepfashion2(DF2, attribute_names=names)
    assert ds.attribute_names == names
    perm = [names.index(a) for a in ATTRS]
    expected = np.zeros((10, 6), np.uint8)
    expected[:, perm] = _multi_hot(ATTRS_2)
    np.testing.assert_array_equal(ds.attributes[1], expected)


def test_coco_fixture_with_extensions():
    ds = read_coco_detection(COCO_EXT)
    assert ds.source == COCO_EXT and ds.image_root == COCO_EXT.parent  # no ../train/image next to it
    assert ds.type_names == OBJECT_TYPES  # categories listed as ids 3, 1, 4, 2: id order
    assert ds.category_names == CATS and ds.attribute_names == ATTRS
    assert ds.attribute_kinds == ("fabric", "print", "fabric", "sleeve", "print")
    assert ds.category_types.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 3]
    # applies_to: denim [lower body]; floral (no key) all; leather [sneaker, id 2 = long sleeve top];
    # sleeveless [sling, vest dress, sling dress]; striped [upper body, full body]
    expected = np.array([
        # den flo lea sle str
        [0, 1, 0, 0, 1],  # short sleeve top
        [0, 1, 1, 0, 1],  # long sleeve top
        [0, 1, 0, 1, 1],  # sling
        [1, 1, 0, 0, 0],  # shorts
        [1, 1, 0, 0, 0],  # trousers
        [1, 1, 0, 0, 0],  # skirt
        [0, 1, 0, 1, 1],  # vest dress
        [0, 1, 0, 1, 1],  # sling dress
        [0, 1, 1, 0, 0],  # sneaker
    ], dtype=bool)
    np.testing.assert_array_equal(ds.applicable, expected)
    assert ds.image_ids.tolist() == [1, 2, 10] and ds.sizes.tolist() == [[12, 8], [16, 10], [6, 4]]
    np.testing.assert_array_equal(ds.boxes[0], BOXES_1)  # bbox [x, y, w, h] -> x1, y1, x2, y2
    np.testing.assert_array_equal(ds.boxes[1], BOXES_2)  # annotations interleaved across images: file order kept
    assert ds.object_types[1].tolist() == TYPES_2 and ds.categories[1].tolist() == CATS_2
    np.testing.assert_array_equal(ds.attributes[1], _multi_hot(ATTRS_2))
    assert not ds.attributes[0].any() and ds.boxes[2].shape == (0, 4)


def test_coco_plain_fixture():
    ds = read_coco_detection(COCO_PLAIN)
    assert ds.type_names == ("top", "bottom", "shoe")  # ids 1, 3, 7
    assert ds.categories is None and ds.attributes is None and ds.category_names is None
    assert ds.attribute_names is None and ds.applicable is None and ds.category_types is None
    assert ds.files == ["a/0007.jpg", "a/0003.jpg", "b/0005.jpg"] and ds.image_ids.tolist() == [7, 3, 5]
    assert ds.image_path(2) == COCO_PLAIN.parent / "b" / "0005.jpg"
    np.testing.assert_array_equal(ds.boxes[0], [[0, 0, 20, 10], [19, 9, 21, 11]])  # 1 px over the edge is fine
    assert ds.object_types[0].tolist() == [0, 1]
    assert ds.boxes[1].shape == (0, 4) and ds.object_types[1].shape == (0,)  # image 3 has no annotations
    np.testing.assert_array_equal(ds.boxes[2], [[10.5, 20, 15.5, 30.25], [0, 0, 1, 1]])
    assert ds.object_types[2].tolist() == [2, 1]
    assert "instances_plain.json" in repr(ds) and "top 1, bottom 2, shoe 1" in repr(ds)


def test_coco_default_image_root(tmp_path):
    (tmp_path / "annotations").mkdir()
    (tmp_path / "validation" / "image").mkdir(parents=True)
    dst = tmp_path / "annotations" / "instances_validation.json"
    shutil.copy(COCO_PLAIN, dst)
    assert read_coco_detection(dst).image_root == tmp_path / "validation" / "image"
    assert read_coco_detection(dst, image_root=tmp_path).image_root == tmp_path
    other = tmp_path / "annotations" / "instances_test.json"  # no test/image folder: the JSON's folder
    shutil.copy(COCO_PLAIN, other)
    assert read_coco_detection(other).image_root == tmp_path / "annotations"


def test_subset():
    ds = read_deepfashion2(DF2)
    sub = ds.subset([2, 0])
    assert sub.files == ["000010.jpg", "000001.jpg"] and sub.image_ids.tolist() == [10, 1]
    assert sub.sizes.tolist() == [[6, 4], [12, 8]] and sub.num_objects == 2
    np.testing.assert_array_equal(sub.boxes[1], BOXES_1)
    assert sub.categories[1].tolist() == [0, 4] and sub.attributes[1].shape == (2, 5)
    assert sub.category_names == ds.category_names and sub.image_root == ds.image_root
    mask = ds.subset(np.array([False, True, False]))
    assert mask.files == ["000002.jpg"] and mask.object_types[0].tolist() == TYPES_2
    assert len(ds.subset([])) == 0 and ds.subset([]).sizes.shape == (0, 2)
    with pytest.raises(IndexError):
        ds.subset([3])


# ----------------------------------------------------------------------------------------------------------------
# COCO <-> DeepFashion2 agreement, round trips, pycocotools


def test_coco_and_deepfashion2_agree():
    df2 = read_deepfashion2(DF2)
    coco = read_coco_detection(COCO_EXT)
    assert_same(df2, coco, applicable=False)  # DF2 files do not say what applies to what


def test_to_coco_round_trip(tmp_path):
    for ds in (read_deepfashion2(DF2), read_coco_detection(COCO_EXT), read_coco_detection(COCO_PLAIN)):
        out = tmp_path / "instances_x.json"
        out.write_text(json.dumps(to_coco(ds)))
        back = read_coco_detection(out, image_root=ds.image_root)
        assert_same(ds, back)
        assert back.attribute_kinds == ds.attribute_kinds
        assert back.image_root == ds.image_root
    d = to_coco(read_deepfashion2(DF2))
    assert [c["name"] for c in d["categories"]] == list(OBJECT_TYPES)
    first = d["annotations"][0]
    assert first["bbox"] == [1.0, 0.0, 6.0, 5.0] and first["area"] == 30.0 and first["iscrowd"] == 0
    assert first["garment_category"] == "short sleeve top" and first["attributes"] == []
    assert d["annotations"][-1]["attributes"] == ["floral"]
    assert {"id": 9, "name": "sneaker", "object_type": "footwear"} in d["garment_categories"]


def test_pycocotools_accepts_to_coco(tmp_path, capsys):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    ds = read_deepfashion2(DF2)
    path = tmp_path / "instances_train.json"
    path.write_text(json.dumps(to_coco(ds)))
    gt = COCO(str(path))
    assert sorted(gt.getImgIds()) == [1, 2, 10]
    assert gt.getCatIds() == [1, 2, 3, 4]
    assert len(gt.getAnnIds()) == 12 and len(gt.getAnnIds(imgIds=[2])) == 10
    assert gt.loadImgs([10])[0]["file_name"] == "000010.jpg"
    # the ground truth as detections scores AP = 1
    dets = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0}
            for a in gt.dataset["annotations"]]
    ev = COCOeval(gt, gt.loadRes(dets), "bbox")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    capsys.readouterr()
    assert ev.stats[0] == pytest.approx(1.0)


# ----------------------------------------------------------------------------------------------------------------
# errors: COCO


def _coco_error(tmp_path, edit, base=COCO_EXT, name="instances_bad.json"):
    data = json.loads(base.read_text())
    edit(data)
    path = tmp_path / name
    path.write_text(json.dumps(data))
    with pytest.raises(DataFormatError) as e:
        read_coco_detection(path)
    assert name in str(e.value) and str(path) == e.value.path
    return str(e.value)


def _ann(data, k):
    return data["annotations"][k]


COCO_ERRORS = {
    "missing images": (lambda d: d.pop("images"), ["missing key 'images'"]),
    "images not a list": (lambda d: d.update(images={}), ["images:", "expected a list"]),
    "missing file_name": (lambda d: d["images"][1].pop("file_name"), ["images[1]", "'file_name'"]),
    "zero width": (lambda d: d["images"][0].update(width=0), ["images[0].width", "positive"]),
    "duplicate image id": (lambda d: d["images"][2].update(id=1), ["images[2].id", "repeated", "images[0]"]),
    "duplicate category id": (lambda d: d["categories"][1].update(id=3), ["categories[1].id", "repeated"]),
    "duplicate category name": (lambda d: d["categories"][1].update(name="full body"), ["categories[1].name"]),
    "missing bbox": (lambda d: _ann(d, 1).pop("bbox"), ["annotations[1]", "missing key 'bbox'"]),
    "unknown image_id": (lambda d: _ann(d, 3).update(image_id=99), ["annotations[3].image_id", "unknown image id 99"]),
    "unknown category_id": (lambda d: _ann(d, 4).update(category_id=5), ["annotations[4].category_id", "unknown"]),
    "zero box width": (lambda d: _ann(d, 5).update(bbox=[0, 5, 0, 5]), ["annotations[5].bbox", "width 0"]),
    "negative box height": (lambda d: _ann(d, 5).update(bbox=[0, 5, 2, -1]), ["annotations[5].bbox", "> 0"]),
    "box outside": (lambda d: _ann(d, 2).update(bbox=[1, 0, 13, 5]), ["annotations[2].bbox", "outside the 12x8"]),
    "box left of image": (lambda d: _ann(d, 2).update(bbox=[-1.5, 0, 2, 2]), ["annotations[2].bbox", "outside"]),
    "box of 3 numbers": (lambda d: _ann(d, 2).update(bbox=[1, 0, 12]), ["annotations[2].bbox", "4 finite numbers"]),
    "box with string": (lambda d: _ann(d, 2).update(bbox=[1, 0, "3", 2]), ["annotations[2].bbox", "4 finite"]),
    "iscrowd": (lambda d: _ann(d, 6).update(iscrowd=1), ["annotations[6].iscrowd", "not supported"]),
    "unknown garment": (lambda d: _ann(d, 7).update(garment_category="cape"),
                        ["annotations[7].garment_category", "unknown garment category 'cape'"]),
    "missing garment": (lambda d: _ann(d, 7).pop("garment_category"), ["annotations[7]", "'garment_category'"]),
    "garment vs type": (lambda d: _ann(d, 7).update(garment_category="skirt"),
                        ["annotations[7].garment_category", "'lower body'", "'footwear'"]),
    "unknown attribute": (lambda d: _ann(d, 0).update(attributes=["striped", "plaid"]),
                          ["annotations[0].attributes[1]", "unknown attribute 'plaid'"]),
    "attribute twice": (lambda d: _ann(d, 0).update(attributes=["striped", "striped"]),
                        ["annotations[0].attributes[1]", "twice"]),
    "attributes not a list": (lambda d: _ann(d, 0).update(attributes="striped"),
                              ["annotations[0].attributes", "expected a list"]),
    "not applicable": (lambda d: _ann(d, 0).update(attributes=["denim"]),
                       ["annotations[0].attributes", "'denim'", "do not apply", "'long sleeve top'"]),
    "unknown object_type": (lambda d: d["garment_categories"][2].update(object_type="hat"),
                            ["garment_categories[2].object_type", "unknown object type 'hat'"]),
    "duplicate garment id": (lambda d: d["garment_categories"][2].update(id=1), ["garment_categories[2].id"]),
    "bad applies_to": (lambda d: d["attribute_names"][0].update(applies_to=["lower body", "hats"]),
                       ["attribute_names[0].applies_to[1]", "unknown 'hats'"]),
    "duplicate attribute name": (lambda d: d["attribute_names"][4].update(name="denim"),
                                 ["attribute_names[4].name", "repeated"]),
    "garment without list": (lambda d: d.pop("garment_categories"),
                             ["annotations[0].garment_category", "no top-level 'garment_categories'"]),
    "attributes without list": (lambda d: d.pop("attribute_names"),
                                ["annotations[0].attributes", "no top-level 'attribute_names'"]),
}


@pytest.mark.parametrize("case", list(COCO_ERRORS))
def test_coco_errors(tmp_path, case):
    edit, needles = COCO_ERRORS[case]
    msg = _coco_error(tmp_path, edit)
    for needle in needles:
        assert needle in msg, (needle, msg)


def test_coco_plain_errors(tmp_path):
    msg = _coco_error(tmp_path, lambda d: d["annotations"][2].update(category_id=2), base=COCO_PLAIN)
    assert "annotations[2].category_id" in msg and "[1, 3, 7]" in msg


def test_coco_missing_and_invalid_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="instances_none.json"):
        read_coco_detection(tmp_path / "instances_none.json")
    bad = tmp_path / "instances_broken.json"
    bad.write_text('{"images": [\n  {"id": 1,}\n]}')
    with pytest.raises(DataFormatError, match=r"instances_broken.json:2: .*not valid JSON") as e:
        read_coco_detection(bad)
    assert e.value.line == 2
    lst = tmp_path / "instances_list.json"
    lst.write_text("[]")
    with pytest.raises(DataFormatError, match="instances_list.json: top level"):
        read_coco_detection(lst)


# ----------------------------------------------------------------------------------------------------------------
# errors: DeepFashion2


@pytest.fixture
def df2_copy(tmp_path):
    dst = tmp_path / "train"
    shutil.copytree(DF2, dst)
    return dst


def _df2_error(folder, stem, edit, exc=DataFormatError, **kw):
    path = folder / "annos" / f"{stem}.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    with pytest.raises(exc) as e:
        read_deepfashion2(folder, **kw)
    msg = str(e.value)
    assert f"{stem}.json" in msg
    return msg


DF2_ERRORS = {
    "missing category_name": ("000001", lambda d: d["item2"].pop("category_name"),
                              ["item2", "missing key 'category_name'"]),
    "missing bounding_box": ("000002", lambda d: d["item10"].pop("bounding_box"),
                             ["item10", "missing key 'bounding_box'"]),
    "category_id not an int": ("000001", lambda d: d["item1"].update(category_id="1"), ["item1.category_id"]),
    "item not an object": ("000001", lambda d: d.update(item3=[1, 2]), ["item3:", "expected an object"]),
    "x2 < x1": ("000001", lambda d: d["item2"].update(bounding_box=[9, 4, 2, 8]),
                ["item2.bounding_box", "width -7", "[x1, y1, x2, y2]"]),
    "box outside": ("000002", lambda d: d["item3"].update(bounding_box=[8, 8, 10, 11.5]),
                    ["item3.bounding_box", "outside the 16x10 image"]),
    "unknown category": ("000001", lambda d: d["item1"].update(category_name="cape", category_id=20),
                         ["item1.category_name", "no object type for category 'cape'", "type_map"]),
    "unknown object_type": ("000002", lambda d: d["item7"].update(object_type="shoes"),
                            ["item7.object_type", "unknown object type 'shoes'"]),
    "id names two categories": ("000002", lambda d: d["item9"].update(category_id=8),
                                ["item9.category_id", "id 8", "'shorts'", "'trousers'"]),
    "name has two ids": ("000002", lambda d: d["item5"].update(category_id=15),
                         ["item5.category_name", "'trousers' has id 15", "000001.json"]),
    "category with two object types": ("000002", lambda d: d["item5"].update(object_type="full body"),
                                       ["item5.object_type", "'trousers'", "one object type per category"]),
    "attribute not a string": ("000002", lambda d: d["item1"].update(attributes=[3]), ["item1.attributes[0]"]),
    "attribute twice": ("000002", lambda d: d["item4"].update(attributes=["floral", "floral"]),
                        ["item4.attributes[1]", "twice"]),
}


@pytest.mark.parametrize("case", list(DF2_ERRORS))
def test_deepfashion2_errors(df2_copy, case):
    stem, edit, needles = DF2_ERRORS[case]
    msg = _df2_error(df2_copy, stem, edit)
    for needle in needles:
        assert needle in msg, (needle, msg)


def test_deepfashion2_vocabulary_errors(df2_copy):
    msg = _df2_error(df2_copy, "000002", lambda d: None, attribute_names=("floral", "denim"))
    assert "item1.attributes[0]" in msg and "unknown attribute 'striped'" in msg
    msg = _df2_error(df2_copy, "000002", lambda d: None, category_names=DF2_CATEGORIES)
    assert "item3.category_name" in msg and "unknown category 'sneaker'" in msg
    with pytest.raises(ValueError, match="type_map"):
        read_deepfashion2(df2_copy, type_map={"skirt": "bottom"})


def test_deepfashion2_file_errors(df2_copy, tmp_path):
    with pytest.raises(FileNotFoundError, match="annos"):
        read_deepfashion2(tmp_path / "nowhere")
    (df2_copy / "image" / "000010.jpg").unlink()
    with pytest.raises(FileNotFoundError) as e:
        read_deepfashion2(df2_copy)
    assert "000010.jpg" in str(e.value) and "000010.json" in str(e.value)
    (df2_copy / "image" / "000010.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataFormatError, match="000010.jpg") as e:
        read_deepfashion2(df2_copy)
    assert "000010.json" in str(e.value)
    shutil.copy(DF2 / "image" / "000010.jpg", df2_copy / "image")
    (df2_copy / "annos" / "000002.json").write_text('{"item1": {\n"category_name": }}')
    with pytest.raises(DataFormatError, match=r"000002.json:2: .*not valid JSON"):
        read_deepfashion2(df2_copy)
    shutil.copy(DF2 / "annos" / "000002.json", df2_copy / "annos")
    shutil.copy(DF2 / "annos" / "000010.json", df2_copy / "annos" / "img_3.json")
    with pytest.raises(DataFormatError, match=r"img_3.json: file name 'img_3.json' is not a number"):
        read_deepfashion2(df2_copy)
    (df2_copy / "annos" / "img_3.json").rename(df2_copy / "annos" / "10.json")
    shutil.copy(DF2 / "image" / "000010.jpg", df2_copy / "image" / "10.jpg")
    with pytest.raises(DataFormatError, match=r"image id 10 repeated \(also 000010.json\)"):
        read_deepfashion2(df2_copy)
