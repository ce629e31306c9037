"""Bad inputs through the public readers, the metrics, the results writer and the image loader (issue 19, part A).

Every case drives a public function (or the command line) with one bad input and checks that the error names the
file, the 1-based line where there is one, and what was expected; none may end in a traceback from inside numpy,
torch or PIL. Covered: strict integers (ASCII digits and a sign; ``1_0``, non-ASCII digits, hex, floats rejected;
surrounding spaces and tabs accepted), long lines cut in messages, empty or degenerate evaluation sets (an error,
or a warning where the protocol fixes the value), strict results JSON (NaN written as null), the results folder
checked before the run and written atomically, and images of every PIL mode (16-bit greyscale scaled by 1/257,
transparency composited on white). The reader cases that already passed are kept at the end.
"""
from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fashionlab import cli
from fashionlab.datasets import (
    AttributeImageDataset,
    DataFormatError,
    DegenerateEvaluationWarning,
    ImageLoadError,
    TensorImages,
    load_rgb,
    read_adde_split,
    read_asen_deepfashion_labels,
    read_asen_split,
    read_attr_num,
    read_bbox,
    read_category_img,
    read_coco_detection,
    read_deepfashion2,
    read_fashionai_labels,
    read_filenames,
    read_id_list,
    read_items,
    read_label_file,
    read_meta,
    read_onehot_labels,
)
from fashionlab.experiments import registry
from fashionlab.metrics import attribute_map, recall_at_k
from fashionlab.taxonomy import AttributeSchema

FIX = Path(__file__).parent / "fixtures"
TOY = AttributeSchema("Toy", ("collar_design", "sleeve_length"), (3, 4))
META = {"ATTRIBUTES": ["collar_design", "sleeve_length"], "ATTRIBUTES_NUM": {"collar_design": 3, "sleeve_length": 4}}
GOOD_QUERIES = "3 0 1\n4 1 2\n"
GOOD_CANDIDATES = "0 0 1\n1 0 2\n2 1 2\n5 1 3\n"


def check_message(err, path, line=None, *expected):
    """The error names ``path`` (with ``:line`` when given), says what was expected, and stays short."""
    msg = str(err.value) if hasattr(err, "value") else str(err)
    assert str(path) in msg, msg
    if line is not None:
        assert f"{path}:{line}:" in msg, msg
    assert "expected" in msg, msg
    for piece in expected:
        assert piece in msg, msg
    assert len(msg) < 1000, f"message of {len(msg)} characters"
    return msg


def write(path: Path, text, mode="w") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, newline="")
    return path


def asen_folder(tmp_path: Path, queries: str = GOOD_QUERIES, candidates: str = GOOD_CANDIDATES, n: int = 6,
                split: str = "test") -> Path:
    """A tiny ASEN folder (docs/formats.md §5.1) of the toy schema: ``n`` images, a valid/test split."""
    root = tmp_path / "toy"
    write(root / "meta.json", json.dumps(META))
    write(root / f"filenames_{split}.txt", "".join(f"img/{i}.jpg\n" for i in range(n)))
    write(root / f"query_{split}.txt", queries)
    write(root / f"candidate_{split}.txt", candidates)
    return root


# ------------------------------------------------------------------------------------------------------------------
# 7. strict integers: ASCII digits and an optional sign; spaces and tabs around fields are fine

BAD_INTEGERS = [
    ("3 0 1_0\n", "'1_0'"),  # Python's int() reads 10
    ("3 0 \u0661\n", "'\u0661'"),  # ARABIC-INDIC DIGIT ONE: int() reads 1
    ("\uff13 0 1\n", "'\uff13'"),  # FULLWIDTH DIGIT THREE
    ("3 0x1 1\n", "'0x1'"),
    ("3 0 1.0\n", "'1.0'"),
    ("3 0 1-\n", "'1-'"),
    ("3 +-0 1\n", "'+-0'"),
    ("3 0 \u00b9\n", "'\u00b9'"),  # SUPERSCRIPT ONE: str.isdigit() says True
]


@pytest.mark.parametrize("line, token", BAD_INTEGERS)
def test_item_files_accept_only_ascii_integers(tmp_path, line, token):
    p = write(tmp_path / "query_test.txt", "4 1 2\n" + line)
    with pytest.raises(DataFormatError) as e:
        read_items(p, TOY, 6)
    check_message(e, p, 2, token, "ASCII digits")


def test_label_file_rejects_non_ascii_digits_in_a_pair(tmp_path):
    p = write(tmp_path / "label_train.txt", "0 0 1\n1 0 2 1 \u0663\n")
    with pytest.raises(DataFormatError) as e:
        read_label_file(p, TOY)
    check_message(e, p, 2, "'\u0663'")


def test_integers_beyond_64_bits_name_the_field(tmp_path):
    p = write(tmp_path / "query_test.txt", "99999999999999999999999 0 1\n")
    with pytest.raises(DataFormatError) as e:
        read_items(p)
    check_message(e, p, 1, "64 bits")


def test_spaces_tabs_signs_and_leading_zeros_are_accepted(tmp_path):
    p = write(tmp_path / "query_test.txt", "  3\t0   1  \n+4 01 \t002\r\n")
    assert read_items(p, TOY, 6).tolist() == [[3, 0, 1], [4, 1, 2]]


@pytest.mark.parametrize("text, line, token", [("3 1_6\n", 1, "'1_6'"), ("3\n\u0664\n", 2, "'\u0664'"),
                                               ("3 -4\n", 1, "'-4'")])
def test_attr_num_accepts_only_positive_ascii_integers(tmp_path, text, line, token):
    p = write(tmp_path / "attr_num.txt", text)
    with pytest.raises(DataFormatError) as e:
        read_attr_num(p)
    check_message(e, p, line, token, "positive integers")


@pytest.mark.parametrize("bad", ["1_2", "\u0661\u0662", "-3", "1 2"])
def test_id_list_accepts_only_non_negative_ascii_integers(tmp_path, bad):
    p = write(tmp_path / "query_test.txt", f"0\n{bad}\n")
    with pytest.raises(DataFormatError) as e:
        read_id_list(p, 20)
    check_message(e, p, 2, "non-negative integer")


DF_HEADER = "2\nimage_name  category_label\n"


@pytest.mark.parametrize("reader, text, line, token", [
    (read_category_img, DF_HEADER + "img/a.jpg 1\nimg/b.jpg \u0663\n", 4, "'\u0663'"),
    (read_category_img, "1_0\nimage_name  category_label\n", 1, "'1_0'"),
    (read_bbox, "1\nimage_name  x_1  y_1  x_2  y_2\nimg/a.jpg 1 2 1_0 20\n", 3, "'1_0'"),
    (read_asen_deepfashion_labels, "0\t1\t3\n1\t2\t\u0665\n", 2, "'\u0665'"),
])
def test_deepfashion_readers_accept_only_ascii_integers(tmp_path, reader, text, line, token):
    p = write(tmp_path / "list.txt", text)
    with pytest.raises(DataFormatError) as e:
        reader(p)
    check_message(e, p, line, token)


def test_deepfashion2_item_keys_need_ascii_digits(tmp_path):
    folder = tmp_path / "train"
    write(folder / "annos" / "000001.json", json.dumps({
        "source": "shop", "item\u0661": {"category_name": "skirt", "category_id": 9, "bounding_box": [0, 0, 4, 4]}}))
    Image.new("RGB", (8, 8)).save(write(folder / "image" / "000001.jpg", b""))
    with pytest.raises(DataFormatError) as e:
        read_deepfashion2(folder)
    check_message(e, folder / "annos" / "000001.json", None, "item\u0661")


@pytest.mark.parametrize("value", ["3", 1e30, 2.5, True])
def test_coco_ids_must_be_64_bit_json_integers(tmp_path, value):
    doc = {"images": [{"id": value, "file_name": "a.jpg", "width": 8, "height": 8}], "annotations": [],
           "categories": [{"id": 1, "name": "upper body"}]}
    p = write(tmp_path / "instances_train.json", json.dumps(doc))
    with pytest.raises(DataFormatError) as e:
        read_coco_detection(p, image_root=tmp_path)
    check_message(e, p, None, "images[0].id")


# ------------------------------------------------------------------------------------------------------------------
# 7. long offending lines are cut in messages


def test_a_five_megabyte_line_is_not_echoed_whole(tmp_path):
    huge = "1 " * 2_500_000
    p = write(tmp_path / "query_test.txt", "3 0 1\n" + huge + "\n")
    with pytest.raises(DataFormatError) as e:
        read_items(p, TOY, 6)
    msg = check_message(e, p, 2, f"({len(huge.strip())} characters)")
    assert len(msg) < 600


def test_a_huge_non_integer_token_is_cut(tmp_path):
    p = write(tmp_path / "query_test.txt", "3 0 " + "x" * 100_000 + "\n")
    with pytest.raises(DataFormatError) as e:
        read_items(p, TOY, 6)
    check_message(e, p, 1, "(100000 characters)")


@pytest.mark.parametrize("text", ["Images/a.jpg,collar_design_labels," + "y" * 300_000 + "\n",
                                  "Images/a.jpg," + "z" * 300_000 + "_labels,ynn\n",
                                  "Images/a.jpg,collar_design_labels,nyn," + "w" * 300_000 + "\n"])
def test_fashionai_label_csv_cuts_long_fields(tmp_path, text):
    p = write(tmp_path / "Annotations" / "label.csv", text)
    with pytest.raises(DataFormatError) as e:
        read_fashionai_labels(p)
    check_message(e, p, 1, "characters)")


def test_deepfashion_list_cuts_a_long_line(tmp_path):
    p = write(tmp_path / "list_category_img.txt", DF_HEADER + "img/a.jpg 1\nimg/b.jpg " + "7 " * 200_000 + "\n")
    with pytest.raises(DataFormatError) as e:
        read_category_img(p)
    check_message(e, p, 4, "characters)")


def test_one_hot_labels_cut_a_long_field(tmp_path):
    p = write(tmp_path / "labels_test.txt", "1 0 0 1 0\n0 1 " + "2" * 50_000 + " 0 1\n")
    with pytest.raises(DataFormatError) as e:
        read_onehot_labels(p, (2, 3))
    check_message(e, p, 2, "(50000 characters)", "0 or 1")


# ------------------------------------------------------------------------------------------------------------------
# 1. empty or degenerate evaluation sets


@pytest.mark.parametrize("which", ["query", "candidate"])
@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_empty_query_or_candidate_file_is_an_error(tmp_path, which, content):
    root = asen_folder(tmp_path, **{("queries" if which == "query" else "candidates"): content})
    with pytest.raises(DataFormatError) as e:
        read_asen_split(root, "test")
    check_message(e, root / f"{which}_test.txt", None, f"empty {which} file")


def test_no_query_with_a_relevant_candidate_is_a_warning_naming_both_files(tmp_path):
    """The protocol defines the value (every AP 0), and paper 05's multi-label relevance may still find relevant
    items for these queries: a warning naming both files, not an error."""
    root = asen_folder(tmp_path, queries="3 0 0\n4 1 1\n", candidates="0 0 1\n1 0 2\n2 1 2\n")
    with pytest.warns(DegenerateEvaluationWarning) as rec:
        read_asen_split(root, "test")
    msg = " ".join(str(w.message) for w in rec)
    assert str(root / "query_test.txt") in msg and str(root / "candidate_test.txt") in msg and "relevant" in msg


def test_an_attribute_without_candidates_is_a_warning_naming_the_file(tmp_path):
    root = asen_folder(tmp_path, queries="3 0 1\n4 1 2\n", candidates="0 0 1\n1 0 2\n")
    with pytest.warns(DegenerateEvaluationWarning, match=r"candidate_test\.txt.*'sleeve_length' \(1 queries\)"):
        sp = read_asen_split(root, "test")
    assert len(sp.queries) == 2


def test_a_healthy_split_reads_without_warnings(tmp_path):
    root = asen_folder(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sp = read_asen_split(root, "test")
    assert sp.queries.shape == (2, 3) and sp.candidates.shape == (4, 3)


def test_empty_image_list_and_empty_training_labels_are_errors(tmp_path):
    root = asen_folder(tmp_path)
    write(root / "filenames_test.txt", "")
    with pytest.raises(DataFormatError) as e:
        read_asen_split(root, "test")
    check_message(e, root / "filenames_test.txt", None, "empty image file list")
    write(root / "filenames_train.txt", "img/0.jpg\n")
    write(root / "label_train.txt", "\n")
    with pytest.raises(DataFormatError) as e:
        read_asen_split(root, "train")
    check_message(e, root / "label_train.txt", None, "empty training label file")


def adde_folder(tmp_path: Path) -> Path:
    root = tmp_path / "shop"
    write(root / "attr_num.txt", "2 3\n")
    write(root / "imgs_test.txt", "a.jpg\nb.jpg\nc.jpg\n")
    write(root / "labels_test.txt", "1 0 0 1 0\n0 1 1 0 0\n1 0 0 0 1\n")
    write(root / "query_test.txt", "0\n")
    write(root / "gallery_test.txt", "1\n2\n")
    return root


@pytest.mark.parametrize("name, what", [("query_test.txt", "empty query id list"),
                                        ("gallery_test.txt", "empty gallery id list"),
                                        ("imgs_test.txt", "empty image list")])
def test_adde_empty_evaluation_files_are_errors(tmp_path, name, what):
    root = adde_folder(tmp_path)
    assert read_adde_split(root, "test").queries.tolist() == [0]
    write(root / name, "")
    if name == "imgs_test.txt":
        write(root / "labels_test.txt", "")
    with pytest.raises(DataFormatError) as e:
        read_adde_split(root, "test")
    check_message(e, root / name, None, what)


def test_metrics_refuse_an_empty_query_set_and_warn_on_no_candidates():
    q, c = np.zeros((0, 4)), np.random.default_rng(0).normal(size=(5, 4))
    with pytest.raises(ValueError, match="no queries.*expected at least one query"):
        attribute_map(q, [], [], c, [0] * 5, [1] * 5)
    with pytest.raises(ValueError, match="no queries"):
        recall_at_k(q, [], [], c, [0] * 5, [1] * 5)
    with pytest.warns(RuntimeWarning, match="no candidates: each of the 2 queries scores AP 0"):
        res = attribute_map(c[:2], [0, 0], [1, 1], np.zeros((0, 4)), [], [])
    assert res["overall"] == 0.0


def test_cli_reproduce_on_an_empty_query_file_fails_naming_it(tmp_path, capsys):
    root = asen_folder(tmp_path, queries="")
    out = tmp_path / "results"
    rc = cli.main(["reproduce", "random-baseline", "--data", str(root), "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert rc != 0
    assert str(root / "query_test.txt") in err and "expected" in err and "Traceback" not in err
    assert not (out / "random-baseline.json").exists()


# ------------------------------------------------------------------------------------------------------------------
# 1. results files: strict JSON (NaN and inf written as null), the folder checked first, written atomically


def strict_json(text: str):
    def refuse(name):
        raise ValueError(f"not JSON: {name}")
    return json.loads(text, parse_constant=refuse)


def doc_with(value, name="faults-toy"):
    return {"experiment": name, "mode": "quick", "seed": 0, "device": "cpu", "seconds": 0.0, "dataset": "toy",
            "rows": [{"method": "M", "metric": "mAP", "attribute": "a", "value": 50.0},
                     {"method": "M", "metric": "mAP", "value": value}],
            "paper_rows": []}


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), np.float32("nan")])
def test_results_with_nan_are_strict_json_with_null_and_a_note(tmp_path, value):
    with pytest.warns(RuntimeWarning, match=r"faults-toy\.json.*written as null.*rows\[1\]\.value \(M, mAP\)"):
        path = registry.write_results(doc_with(value), tmp_path)
    doc = strict_json(path.read_text())
    assert doc["rows"][1]["value"] is None and doc["rows"][0]["value"] == 50.0
    assert "not a number" in doc["notes"][-1]
    assert "| M | 50.00 | n/a |" in (tmp_path / "faults-toy.md").read_text()


def test_numpy_values_are_written_as_plain_json(tmp_path):
    path = registry.write_results(doc_with(np.float32(12.5)) | {"seed": np.int64(3)}, tmp_path)
    doc = strict_json(path.read_text())
    assert doc["rows"][1]["value"] == 12.5 and doc["seed"] == 3


@pytest.fixture
def toy_experiment():
    calls = []

    def fn(mode, data, seed, progress, device):
        calls.append(mode)
        return registry.Result(rows=[{"method": "M", "metric": "mAP", "value": float("nan")}])

    name = "faults-inputs-toy"
    registry.register(name, "toy")(fn)
    yield name, calls
    registry._REGISTRY.pop(name)


def test_run_writes_strict_json_and_keeps_nan_in_memory(tmp_path, toy_experiment):
    name, calls = toy_experiment
    with pytest.warns(RuntimeWarning, match="written as null"):
        res = registry.run(name, mode="quick", out=tmp_path, progress=False)
    assert math.isnan(res.rows[0]["value"]) and calls == ["quick"]
    assert strict_json((tmp_path / f"{name}.json").read_text())["rows"][0]["value"] is None
    assert registry.load(name, tmp_path)["rows"][0]["value"] is None


@pytest.mark.parametrize("kind", ["out is a file", "parent is a file"])
def test_out_is_checked_before_the_experiment_runs(tmp_path, toy_experiment, kind):
    name, calls = toy_experiment
    blocker = write(tmp_path / "blocker", "x")
    out = blocker if kind == "out is a file" else blocker / "results"
    with pytest.raises(NotADirectoryError) as e:
        registry.run(name, mode="quick", out=out, progress=False)
    assert str(out) in str(e.value) and ("expected a folder" in str(e.value) or "not a folder" in str(e.value))
    assert calls == []  # nothing ran


def test_an_interrupted_write_keeps_the_previous_results_and_leaves_no_debris(tmp_path, monkeypatch):
    registry.write_results(doc_with(10.0), tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def killed(doc):
        raise KeyboardInterrupt

    monkeypatch.setattr(registry, "to_markdown", killed)
    with pytest.raises(KeyboardInterrupt):
        registry.write_results(doc_with(20.0), tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_loading_a_corrupt_results_file_names_it(tmp_path):
    write(tmp_path / "faults-toy.json", '{"experiment": "faults-toy", "rows": [')
    with pytest.raises(ValueError) as e:
        registry.load("faults-toy", tmp_path)
    check_message(e, tmp_path / "faults-toy.json", None, "not a results file")


# ------------------------------------------------------------------------------------------------------------------
# 6. images of every mode PIL opens, with the right intensities

G16 = np.full((6, 6), 128 * 257, np.uint16)


def make_image(tmp_path: Path, name: str) -> tuple[Path, list[int]]:
    """An image file of one mode and the RGB value its pixel (0, 0) must load as."""
    p = tmp_path / name
    if name == "grey16.png":
        Image.fromarray(G16).save(p)  # opens as I;16
        return p, [128, 128, 128]
    if name == "grey16_dark.png":
        Image.fromarray(np.full((6, 6), 1000, np.uint16)).save(p)
        return p, [4, 4, 4]  # 1000 / 257 = 3.9; PIL's own conversion gives 255
    if name == "grey16.tif":
        Image.fromarray(G16).save(p)
        return p, [128, 128, 128]
    if name == "grey32.tif":
        Image.fromarray(G16.astype(np.int32)).save(p)  # mode I
        return p, [128, 128, 128]
    if name == "palette.png":
        im = Image.new("P", (6, 6), 1)
        im.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
        im.save(p)
        return p, [10, 200, 30]
    if name == "palette_transparent.png":
        im = Image.new("P", (6, 6), 0)
        im.putpalette([0, 0, 0] * 256)
        im.save(p, transparency=0)
        return p, [255, 255, 255]
    if name == "cmyk.jpg":
        Image.new("CMYK", (6, 6), (0, 255, 255, 0)).save(p, quality=100)
        return p, [255, 0, 0]
    if name == "rgba_clear.png":
        Image.new("RGBA", (6, 6), (0, 0, 0, 0)).save(p)
        return p, [255, 255, 255]  # composited on white, not the black its transparent pixels store
    if name == "rgba_half.png":
        Image.new("RGBA", (6, 6), (0, 0, 255, 128)).save(p)
        return p, [127, 127, 255]
    if name == "rgba_opaque.png":
        Image.new("RGBA", (6, 6), (10, 20, 30, 255)).save(p)
        return p, [10, 20, 30]
    if name == "la.png":
        Image.new("LA", (6, 6), (0, 0)).save(p)
        return p, [255, 255, 255]
    if name == "grey.png":
        Image.new("L", (6, 6), 77).save(p)
        return p, [77, 77, 77]
    if name == "bilevel.png":
        Image.new("1", (6, 6), 1).save(p)
        return p, [255, 255, 255]
    raise KeyError(name)


MODES = {"grey16.png": "I;16", "grey16_dark.png": "I;16", "grey16.tif": "I;16", "grey32.tif": "I",
         "palette.png": "P", "palette_transparent.png": "P", "cmyk.jpg": "CMYK", "rgba_clear.png": "RGBA",
         "rgba_half.png": "RGBA", "rgba_opaque.png": "RGBA", "la.png": "LA", "grey.png": "L", "bilevel.png": "1"}


@pytest.mark.parametrize("name", list(MODES))
def test_every_mode_loads_with_the_right_intensities(tmp_path, name):
    p, rgb = make_image(tmp_path, name)
    with Image.open(p) as im:
        assert im.mode == MODES[name]  # the mode the case is about
    out = load_rgb(p)
    assert out.mode == "RGB" and out.size == (6, 6)
    assert np.abs(np.asarray(out)[0, 0].astype(int) - rgb).max() <= 1, np.asarray(out)[0, 0]


def test_a_16_bit_image_loads_right_through_the_datasets(tmp_path):
    make_image(tmp_path, "grey16.png")
    ds = AttributeImageDataset(tmp_path, ["grey16.png"], [[0, 0, 0]])
    x = ds[0][0]
    assert torch.allclose(x, torch.full_like(x, 128 / 255), atol=1e-6)
    t = TensorImages(tmp_path, ["grey16.png"], 4)
    assert t.data.unique().tolist() == [128]


def test_32_bit_values_outside_16_bits_are_an_error_naming_the_file(tmp_path):
    p = tmp_path / "wide.tif"
    Image.fromarray(np.full((4, 4), 70000, np.int32)).save(p)
    with pytest.raises(ImageLoadError) as e:
        load_rgb(p, context="line 3 of filenames_test.txt")
    check_message(e, p, None, "0..65535", "line 3 of filenames_test.txt")


@pytest.mark.parametrize("content", [b"", b"not an image at all", "png"])
def test_undecodable_images_name_the_file(tmp_path, content):
    p = tmp_path / "bad.png"
    if content == "png":
        Image.new("RGB", (64, 64), (1, 2, 3)).save(p)
        p.write_bytes(p.read_bytes()[:60])  # truncated
    else:
        p.write_bytes(content)
    with pytest.raises(ImageLoadError) as e:
        load_rgb(p)
    assert str(p) in str(e.value) and "cannot decode image" in str(e.value)


# ------------------------------------------------------------------------------------------------------------------
# reader cases that already passed before issue 19 (kept covered)


@pytest.mark.parametrize("name, text, line, piece", [
    ("query_test.txt", b"3 0 1\n\xff\xfe 0 1\n", 2, "not UTF-8"),
    ("query_test.txt", "3 0 1\n4 1\n", 2, "2 field(s)"),
    ("query_test.txt", "3 0 1\n9 0 1\n", 2, "image id 9 out of range"),
    ("query_test.txt", "3 0 1\n4 7 1\n", 2, "attribute index 7 out of range"),
    ("query_test.txt", "3 0 1\n4 0 3\n", 2, "value index 3 out of range"),
    ("query_test.txt", "3 0 1\n\n4 0 1\n", 2, "blank line"),
])
def test_item_reader_cases_kept(tmp_path, name, text, line, piece):
    p = write(tmp_path / name, text)
    with pytest.raises(DataFormatError) as e:
        read_items(p, TOY, 6)
    assert f"{p}:{line}:" in str(e.value) and piece in str(e.value)


def test_other_reader_cases_kept(tmp_path):
    p = write(tmp_path / "filenames_test.txt", "a.jpg\n\nb.jpg\n")
    with pytest.raises(DataFormatError) as e:
        read_filenames(p)
    check_message(e, p, 2, "blank line")
    p = write(tmp_path / "meta.json", '{"ATTRIBUTES": ["a"],\n "ATTRIBUTES_NUM": {"a": 2},}')
    with pytest.raises(DataFormatError) as e:
        read_meta(p)
    assert f"{p}:2:" in str(e.value) and "invalid JSON" in str(e.value)
    p = write(tmp_path / "labels_test.txt", "1 1 0 1 0\n")
    with pytest.raises(DataFormatError) as e:
        read_onehot_labels(p, (2, 3))
    check_message(e, p, 1, "2 ones")
    p = write(tmp_path / "label.csv", "Images/a.jpg,collar_design_labels\n")
    with pytest.raises(DataFormatError) as e:
        read_fashionai_labels(p)
    check_message(e, p, 1, "expected 3")
    p = write(tmp_path / "list_bbox.txt", "1\nimage_name  x_1  y_1  x_2  y_2\nimg/a.jpg 5 5 1 1\n")
    with pytest.raises(DataFormatError) as e:
        read_bbox(p)
    check_message(e, p, 3, "x_1 <= x_2")
    with pytest.raises(FileNotFoundError, match="not found: .*nothing.txt"):
        read_items(tmp_path / "nothing.txt")
