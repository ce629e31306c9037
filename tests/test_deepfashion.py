"""fashionlab.datasets.deepfashion: the DeepFashion Category and Attribute Prediction list files (docs/formats.md §5.3)
and ASEN's DeepFashion label files (§5.1).

The hand-written fixture ``tests/fixtures/deepfashion`` mirrors the real release (``Anno/`` + ``Eval/``): 8
attributes over all five types (names with spaces, one name separated from its type by a single space), 6 images
in 3 category folders, ``list_attr_img.txt`` with CRLF line ends and a ``0`` label, a tab-separated bbox line and a
partition file in another image order without a final newline. Bad-input variants are edited copies in
``tmp_path``; each error must name the file and the 1-based line. When ``../shared/realdata`` exists, ASEN's
``label_test.txt`` is checked against the 1,000-attribute, 5-type layout.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from fashionlab.config import shared_realdata
from fashionlab.datasets import (
    CATEGORY_TYPE_NAMES,
    TYPE_NAMES,
    DataFormatError,
    DeepFashionAttributes,
    read_asen_deepfashion_labels,
    read_attr_cloth,
    read_attr_img,
    read_bbox,
    read_category_cloth,
    read_category_img,
    read_deepfashion,
    read_eval_partition,
    read_filenames,
    read_items,
    read_meta,
    type_ranks,
)

pytestmark = pytest.mark.usefixtures("one_thread")

FIX = Path(__file__).parent / "fixtures" / "deepfashion"
ALL = ("attributes", "categories", "bboxes", "partition")

B1 = "img/Sheer_Pleated-Front_Blouse/img_00000001.jpg"
B2 = "img/Sheer_Pleated-Front_Blouse/img_00000002.jpg"
J1 = "img/Faded_Skinny_Jeans/img_00000001.jpg"
J2 = "img/Faded_Skinny_Jeans/img_00000002.jpg"
D1 = "img/Boho_Floral_Maxi_Dress/img_00000001.jpg"
D2 = "img/Boho_Floral_Maxi_Dress/img_00000002.jpg"
IMAGES = [B1, B2, J1, J2, D1, D2]
ATTRS = ["a-line", "abstract", "abstract chevron", "cotton", "faux leather", "crew neck", "floral print", "boho chic"]
TYPES = [3, 1, 1, 2, 2, 4, 1, 5]
LABELS = [
    [-1, 1, -1, 1, -1, 1, -1, -1],
    [-1, -1, 1, -1, -1, 1, -1, -1],
    [-1, -1, -1, 1, -1, -1, -1, -1],
    [-1, -1, -1, -1, 1, -1, -1, 0],
    [1, -1, -1, -1, -1, -1, 1, 1],
    [1, -1, -1, 1, -1, 1, -1, -1],
]


def copy_fixture(tmp_path) -> Path:
    root = tmp_path / "DeepFashion"
    shutil.copytree(FIX, root)
    return root


def edit(path: Path, line: int, new: str | None) -> None:
    """Replace (or with ``None`` delete) 1-based ``line`` of a list file, keeping its line ends."""
    raw = path.read_bytes().decode()
    nl = "\r\n" if "\r\n" in raw else "\n"
    lines = raw.split(nl)
    if new is None:
        del lines[line - 1]
    else:
        lines[line - 1] = new
    path.write_bytes(nl.join(lines).encode())


def line_of(path: Path, line: int) -> str:
    return path.read_bytes().decode().splitlines()[line - 1]


# ------------------------------------------------------------------------------------------------------------------
# the fixture, parsed


def test_fixture_line_endings_are_as_intended():
    # tests/fixtures/.gitattributes (-text) keeps these as written
    assert (FIX / "Anno/list_attr_img.txt").read_bytes().count(b"\r\n") == 8
    assert b"\r" not in (FIX / "Anno/list_attr_cloth.txt").read_bytes()
    assert b"faux leather 2\n" in (FIX / "Anno/list_attr_cloth.txt").read_bytes()  # the entry-446 quirk
    assert (FIX / "Eval/list_eval_partition.txt").read_bytes().endswith(b"test")  # no final newline


def test_read_everything_by_hand():
    df = read_deepfashion(FIX, require=ALL)
    assert isinstance(df, DeepFashionAttributes) and df.root == FIX
    assert df.image_names == IMAGES and df.num_images == 6
    assert df.attribute_names == ATTRS and df.num_attributes == 8
    assert df.attribute_types.dtype == np.int8 and df.attribute_types.tolist() == TYPES
    assert df.labels.dtype == np.int8 and df.labels.tolist() == LABELS
    assert df.category_names == ["Anorak", "Blouse", "Jeans", "Dress"]
    assert df.category_types.tolist() == [1, 1, 2, 3]
    assert [CATEGORY_TYPE_NAMES[t] for t in df.category_types.tolist()] == ["upper", "upper", "lower", "full"]
    assert df.categories.tolist() == [1, 1, 2, 2, 3, 3]  # 0-based: the file says 2 2 3 3 4 4
    assert df.bboxes.tolist() == [[72, 79, 232, 273], [67, 59, 155, 161], [65, 36, 186, 299],
                                  [51, 62, 167, 291], [46, 12, 242, 300], [0, 5, 300, 299]]
    # list_eval_partition.txt lists the images in another order: aligned by name
    assert df.partition.tolist() == ["train", "val", "train", "test", "train", "test"]
    assert df.files["partition"] == FIX / "Eval/list_eval_partition.txt"
    assert df.files["attr_img"] == FIX / "Anno/list_attr_img.txt"

    assert df.split_indices("train").tolist() == [0, 2, 4]
    assert df.split_indices("val").tolist() == [1]
    assert df.split_indices("test").tolist() == [3, 5]
    with pytest.raises(ValueError, match="DeepFashion calls it 'val'"):
        df.split_indices("valid")

    assert df.type_indices(1).tolist() == [1, 2, 6]
    assert df.type_indices("fabric").tolist() == [3, 4]
    assert df.type_indices("style-related").tolist() == [7]
    with pytest.raises(ValueError, match="unknown attribute type 6"):
        df.type_indices(6)
    pos = df.positives()
    assert pos.dtype == bool and pos.tolist() == (np.array(LABELS) == 1).tolist()
    assert df.positives("texture").tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 0], [0, 0, 0], [0, 0, 1], [0, 0, 0]]
    assert not df.positives(5)[3, 0]  # the unknown label (0) is no positive (docs/protocols.md §4.3)

    r = repr(df)
    assert r.startswith("DeepFashionAttributes(6 images, 8 attributes (texture 3, fabric 2, shape 1, part 1, style 1)")
    assert "4 categories" in r and "train 3/val 1/test 2" in r


def test_single_readers():
    names, types = read_attr_cloth(FIX / "Anno/list_attr_cloth.txt")
    assert names == ATTRS and types.tolist() == TYPES
    names, types = read_category_cloth(FIX / "Anno/list_category_cloth.txt")
    assert names[-1] == "Dress" and types.dtype == np.int8
    imgs, cats = read_category_img(FIX / "Anno/list_category_img.txt", num_categories=4)
    assert imgs == IMAGES and cats.dtype == np.int64 and cats.tolist() == [1, 1, 2, 2, 3, 3]
    imgs, boxes = read_bbox(FIX / "Anno/list_bbox.txt")
    assert imgs[2] == J1 and boxes[2].tolist() == [65, 36, 186, 299]  # the tab-separated line
    imgs, part = read_eval_partition(FIX / "Eval/list_eval_partition.txt")
    assert imgs[0] == D1 and part.tolist()[:2] == ["train", "train"]
    imgs, labels = read_attr_img(FIX / "Anno/list_attr_img.txt", None)  # width taken from the first line
    assert imgs == IMAGES and labels.shape == (6, 8) and labels.tolist() == LABELS


def test_optional_parts_absent_and_root_layout(tmp_path):
    root = copy_fixture(tmp_path)
    (root / "Anno/list_bbox.txt").unlink()
    shutil.rmtree(root / "Eval")
    df = read_deepfashion(root)
    assert df.bboxes is None and df.partition is None and df.categories is not None
    assert "bboxes" not in repr(df)
    with pytest.raises(ValueError, match="no evaluation partition was read"):
        df.split_indices("train")
    # files directly in root, or in Anno_coarse/, are found too
    flat = tmp_path / "flat"
    flat.mkdir()
    for f in ("list_attr_cloth.txt", "list_attr_img.txt"):
        shutil.copy(FIX / "Anno" / f, flat / f)
    (flat / "Anno_coarse").mkdir()
    shutil.copy(FIX / "Eval/list_eval_partition.txt", flat / "Anno_coarse")
    df = read_deepfashion(flat, require=("partition",))
    assert df.labels.tolist() == LABELS and df.partition.tolist()[1] == "val" and df.categories is None


# ------------------------------------------------------------------------------------------------------------------
# group schema (ASEN's five DeepFashion attributes, docs/formats.md §5.1)


def test_group_schema_value_ranks():
    df = read_deepfashion(FIX)
    s = df.group_schema()
    assert s.name == "DeepFashion"
    assert s.attributes == ("texture", "fabric", "shape", "part", "style")
    assert s.num_values == (3, 2, 1, 1, 1)
    assert s.values["texture"] == ("abstract", "abstract chevron", "floral print")
    assert s.values["fabric"] == ("cotton", "faux leather")
    # value index = rank of the global id within its type
    ranks = type_ranks(df.attribute_types)
    assert ranks.tolist() == [0, 0, 1, 0, 1, 0, 2, 0]
    for g, (t, r) in enumerate(zip(TYPES, ranks.tolist())):
        assert s.value_name(TYPE_NAMES[t], r) == ATTRS[g]
    sub = df.group_schema(types=["fabric", 1])  # kept in type order
    assert sub.attributes == ("texture", "fabric") and sub.num_values == (3, 2)
    assert df.group_schema(asen_names=True).attributes[0] == "texture-related"
    # a type without attributes
    df2 = DeepFashionAttributes(root=FIX, image_names=[], attribute_names=["x", "y"],
                                attribute_types=np.array([2, 2], np.int8), labels=np.zeros((0, 2), np.int8))
    assert df2.group_schema().attributes == ("fabric",)
    with pytest.raises(ValueError, match=r"no attributes of type \['style'\]"):
        df2.group_schema(types=[5])


# ------------------------------------------------------------------------------------------------------------------
# order alignment


def test_files_in_another_order_are_aligned_by_name(tmp_path):
    root = copy_fixture(tmp_path)
    for f in ("Anno/list_bbox.txt", "Anno/list_category_img.txt"):
        p = root / f
        lines = p.read_text().splitlines()
        p.write_text("\n".join(lines[:2] + lines[2:][::-1]) + "\n")
    ref = read_deepfashion(FIX, require=ALL)
    df = read_deepfashion(root, require=ALL)
    assert df.image_names == IMAGES
    assert np.array_equal(df.bboxes, ref.bboxes) and np.array_equal(df.categories, ref.categories)
    assert np.array_equal(df.partition, ref.partition)


# ------------------------------------------------------------------------------------------------------------------
# bad input: each a clear error naming the file and the line


BAD = [
    # (file, line, replacement or None to delete, line of the error, a fragment of the message)
    ("Anno/list_attr_img.txt", 1, "7", 1, "line 1 gives 7 entries but .* has 6 data lines"),
    ("Anno/list_attr_img.txt", 1, "5", 1, "line 1 gives 5 entries but .* has 6 data lines"),
    ("Anno/list_attr_img.txt", 1, "six", 1, "expected line 1 to be the number of entries"),
    ("Anno/list_category_img.txt", 1, "4", 1, "line 1 gives 4 entries but .* has 6 data lines"),
    ("Anno/list_category_img.txt", 2, None, 2, "expected the column header 'image_name  category_label'"),
    ("Anno/list_attr_cloth.txt", 2, None, 2, "expected the column header 'attribute_name  attribute_type'"),
    ("Anno/list_attr_img.txt", 2, None, 2, "expected the column header 'image_name  attribute_labels'"),
    ("Anno/list_bbox.txt", 5, f"{J1}  065 036 186", 5, r"4 field\(s\) .* expected '<image name> <x_1> <y_1>"),
    ("Anno/list_attr_img.txt", 4, f"{B2}  -1 -1 1 -1 -1 1 -1", 4, r"7 label field\(s\) .* expected 8"),
    ("Anno/list_attr_img.txt", 6, f"{J2}  -1 -1 -1 -1 1 -1 -1 2", 6,
     r"label '2' of attribute 7 \('boho chic'\) \(field 9\) .* expected -1, 0 or 1"),
    ("Anno/list_attr_img.txt", 7, f"{D1}  1 -1 -1 -1 -1 -1 1 1.0", 7, "label '1.0' of attribute 7"),
    ("Anno/list_attr_img.txt", 5, "", 5, "blank line inside"),
    ("Eval/list_eval_partition.txt", 6, f"{B2}  valid", 6,
     "evaluation status 'valid' .* expected one of train, val, test"),
    ("Anno/list_attr_cloth.txt", 10, "boho chic                    6", 10,
     r"attribute type '6' in 'boho chic +6' .* expected an integer 1..5 "
     r"\(1 texture, 2 fabric, 3 shape, 4 part, 5 style\)"),
    ("Anno/list_attr_cloth.txt", 5, "abstract chevron", 5, "attribute type 'chevron' .* as the last field"),
    ("Anno/list_category_cloth.txt", 3, "Anorak  4", 3, r"category type '4' .* expected an integer 1..3"),
    ("Anno/list_category_img.txt", 8, f"{D2}  5", 8, r"category label 5 .* expected 1..4"),
    ("Anno/list_category_img.txt", 8, f"{D2}  0", 8, r"category label 0 .* expected 1..4"),
    ("Anno/list_bbox.txt", 7, f"{D1}  246 012 242 300", 7, r"bounding box \[246, 12, 242, 300\] .* x_1 <= x_2"),
    ("Anno/list_bbox.txt", 7, f"{D1}  046 012 242 x", 7, "field 5 is 'x' .* non-negative integer"),
    ("Anno/list_category_img.txt", 4, f"{B1}  2", 4, f"image '{B1}' listed twice .* \\(first on line 3\\)"),
    ("Anno/list_attr_img.txt", 4, f"{B1}  -1 -1 1 -1 -1 1 -1 -1", 4, r"listed twice .* \(first on line 3\)"),
    ("Eval/list_eval_partition.txt", 7, "img/Faded_Skinny_Jeans/img_00000009.jpg  train", 7,
     "img_00000009.jpg' of list_eval_partition.txt is not in list_attr_img.txt"),
]


@pytest.mark.parametrize("file, line, new, err_line, message", BAD,
                         ids=[f"{f.split('/')[-1]}:{n}:{m[:24]}" for f, _, _, n, m in BAD])
def test_bad_input_names_file_and_line(tmp_path, file, line, new, err_line, message):
    root = copy_fixture(tmp_path)
    path = root / file
    edit(path, line, new)
    with pytest.raises(DataFormatError, match=message) as e:
        read_deepfashion(root, require=ALL)
    assert e.value.path == str(path) and e.value.line == err_line
    assert str(e.value).startswith(f"{path}:{err_line}: ")


def test_image_missing_from_one_file(tmp_path):
    root = copy_fixture(tmp_path)
    path = root / "Anno/list_bbox.txt"
    edit(path, 5, None)  # J1
    edit(path, 1, "5")
    with pytest.raises(DataFormatError, match=f"image '{J1}' \\(line 5 of .*list_attr_img.txt\\) is missing from "
                                              f"list_bbox.txt") as e:
        read_deepfashion(root, require=ALL)
    assert e.value.path == str(path)


def test_missing_files_say_what_and_where(tmp_path):
    root = copy_fixture(tmp_path)
    (root / "Anno/list_attr_img.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"DeepFashion list_attr_img.txt \(per-image attribute labels; Category "
                                                r"and Attribute Prediction benchmark, Anno/\) not found; looked in "
                                                r".*Anno, .*Anno_coarse, .*Eval, .*DeepFashion$"):
        read_deepfashion(root)
    root = copy_fixture(tmp_path / "b")
    shutil.rmtree(root / "Eval")
    assert read_deepfashion(root).partition is None
    with pytest.raises(FileNotFoundError, match=r"list_eval_partition.txt \(train/val/test partition; .* Eval/\) "
                                                r"not found"):
        read_deepfashion(root, require=("attributes", "partition"))
    (root / "Anno/list_category_cloth.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"list_category_cloth.txt .* not found \(its partner "
                                                r"list_category_img.txt was found at"):
        read_deepfashion(root)
    with pytest.raises(ValueError, match=r"unknown part\(s\) \['labels'\]"):
        read_deepfashion(root, require=("labels",))
    with pytest.raises(FileNotFoundError, match="DeepFashion folder not found"):
        read_deepfashion(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match=r"list_attr_img.txt\) not found: .*nope.txt"):
        read_attr_img(tmp_path / "nope.txt", 8)


# ------------------------------------------------------------------------------------------------------------------
# the streamed list_attr_img.txt parser


def _attr_img_text(rows, names, sep=" ", nl="\n", count=None) -> str:
    lines = [str(len(rows) if count is None else count), "image_name  attribute_labels"]
    lines += [n + "    " + sep.join(f"{v:2d}" for v in r) for n, r in zip(names, rows)]
    return nl.join(lines) + nl


@pytest.mark.parametrize("variant", ["lf", "crlf", "cr", "tabs", "bom_blank_tail", "vertical_tab"])
def test_attr_img_layouts_and_batches(tmp_path, variant):
    rng = np.random.default_rng(0)
    rows = rng.choice(np.array([-1, 0, 1]), size=(50, 13)).tolist()
    names = [f"img/F_{i % 3}/img_{i:08d}.jpg" for i in range(50)]
    sep = {"tabs": "\t", "vertical_tab": "\v"}.get(variant, " ")
    nl = {"crlf": "\r\n", "cr": "\r"}.get(variant, "\n")
    text = _attr_img_text(rows, names, sep=sep, nl=nl)
    if variant == "bom_blank_tail":
        text = "\ufeff" + text + "\n  \n\n"
    p = tmp_path / "list_attr_img.txt"
    p.write_bytes(text.encode())
    for batch in (1 << 23, 200, 1):  # one batch, several, one line each
        got_names, labels = read_attr_img(p, 13, batch_chars=batch)
        assert got_names == names and labels.dtype == np.int8 and labels.tolist() == rows


def test_attr_img_errors_in_later_batches_and_counts(tmp_path):
    rows = [[1, -1, 0]] * 40
    names = [f"img/A/img_{i:08d}.jpg" for i in range(40)]
    p = tmp_path / "list_attr_img.txt"
    lines = _attr_img_text(rows, names).splitlines()
    lines[33] = names[30] + "  1 -1 +1"  # line 34
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match=r":34: label '\+1' of attribute 2 \(field 4\)"):
        read_attr_img(p, 3, batch_chars=100)
    lines[33] = names[30] + "  1 -1 -1"
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match=r":34: image 'img/A/img_00000030.jpg' listed twice .* "
                                              r"\(first on line 33\)"):
        read_attr_img(p, 3, batch_chars=100)
    lines[33] = names[30] + "  1 -1 -1 1"
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match=r":34: 4 label field\(s\) after the image name .* expected 3"):
        read_attr_img(p, 3, batch_chars=100)
    # a count far beyond what the file can hold, or zero
    for count in (10**12, 0):
        p.write_text(_attr_img_text(rows, names, count=count))
        with pytest.raises(DataFormatError, match=f":1: line 1 gives {count} entries but .* has 40 data lines"):
            read_attr_img(p, 3)
    p.write_text("")
    with pytest.raises(DataFormatError, match=r":1: empty attribute label list"):
        read_attr_img(p, 3)
    p.write_bytes(b"1\nimage_name  attribute_labels\nimg/\xff.jpg  1 -1 0\n")
    with pytest.raises(DataFormatError, match=r":3: .* is not UTF-8"):
        read_attr_img(p, 3)
    p.write_text("0\nimage_name  attribute_labels\n")
    names0, labels0 = read_attr_img(p, 3)
    assert names0 == [] and labels0.shape == (0, 3)


# ------------------------------------------------------------------------------------------------------------------
# ASEN's DeepFashion label_{valid,test}.txt (§5.1)


def test_read_asen_deepfashion_labels(tmp_path):
    p = tmp_path / "label_test.txt"
    p.write_bytes(b"0\t3\t226\t2\t254\t2\t268\t\t\t\t\r\n1\t4\t156\t\t\t\r\n2\t5\t999\t\t\r\n")
    assert read_asen_deepfashion_labels(p, num_attributes=1000) == [
        (0, [(3, 226), (2, 254), (2, 268)]), (1, [(4, 156)]), (2, [(5, 999)])]
    for data, message in [(b"0\t6\t226\r\n", ":1: attribute type 6"),
                          (b"0\t1\t2\r\n1\t3\t1000\r\n", ":2: global attribute id 1000 out of range .* 0..999"),
                          (b"0\t1\t2\r\n1\t3\r\n", r":2: 2 field\(s\) '1 3' .* expected '<image id>' then"),
                          (b"0\t1\t2\r\n0\t3\t4\r\n", r":2: image id 0 repeated .* \(first on line 1\)"),
                          (b"0\t1\t-2\r\n", ":1: field '-2' .* non-negative integers")]:
        p.write_bytes(data)
        with pytest.raises(DataFormatError, match=message):
            read_asen_deepfashion_labels(p, num_attributes=1000)


# ------------------------------------------------------------------------------------------------------------------
# real files (../shared/realdata): only ASEN's DeepFashion split files are there, not the list files

REAL = shared_realdata()
REAL_DF = REAL / "zhengguorong_asenpp/data/DeepFashion" if REAL is not None else None


@pytest.mark.realdata
@pytest.mark.skipif(REAL_DF is None or not REAL_DF.is_dir(), reason="../shared/realdata (ASEN DeepFashion) not present")
def test_real_asen_labels_fit_the_1000_attribute_5_type_layout():
    rows = read_asen_deepfashion_labels(REAL_DF / "label_test.txt", num_attributes=1000)
    n = len(read_filenames(REAL_DF / "filenames_test.txt"))
    assert len(rows) == n == 27_625 and [i for i, _ in rows] == list(range(n))
    pairs = np.array([p for _, ps in rows for p in ps], dtype=np.int64)
    assert pairs[:, 0].min() >= 1 and pairs[:, 0].max() <= 5
    assert pairs[:, 1].min() >= 0 and pairs[:, 1].max() <= 999
    # each global id has one type; together they rebuild list_attr_cloth.txt's types
    types = np.zeros(1000, dtype=np.int8)
    for t, g in np.unique(pairs, axis=0).tolist():
        assert types[g] in (0, t), f"global id {g} has types {types[g]} and {t}"
        types[g] = t
    assert (types > 0).all()
    schema = read_meta(REAL / "zhengguorong_asenpp/data/meta.json", "DeepFashion")
    df = DeepFashionAttributes(root=REAL_DF, image_names=[], attribute_names=[f"attr_{g}" for g in range(1000)],
                               attribute_types=types, labels=np.zeros((0, 1000), np.int8))
    gs = df.group_schema(asen_names=True)
    assert gs.attributes == schema.attributes and gs.num_values == schema.num_values == (156, 218, 180, 216, 230)
    # query/candidate value = rank of the global id within its type (docs/formats.md §5.1)
    ranks = type_ranks(types)
    items = np.concatenate([read_items(REAL_DF / f"{k}_test.txt", schema, n) for k in ("query", "candidate")])
    ok = [any(t == a + 1 and ranks[g] == v for t, g in rows[i][1]) for i, a, v in items.tolist()]
    assert len(ok) == n and all(ok)
