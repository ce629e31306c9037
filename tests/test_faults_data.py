"""Datasets on disk (issue 19, items 2 and 5): faults and bad inputs of the dataset writers and of
``fashionlab check-data``, driven through the command line (``python -m fashionlab``, ``fashionlab.cli.main``) and
the public API.

* Writers (``fashionlab synth``, :func:`fashionlab.synth.writer.generate`, the build-once cache of
  :mod:`fashionlab.datasets.sources`): argument errors caught before anything is written; foreign folders refused
  untouched; half-written folders of older runs and debris of killed runs never block a run; an exception,
  Ctrl-C, SIGTERM or SIGKILL part-way leave the previous dataset byte-identical and no debris (SIGKILL: at most
  a hidden temporary folder, removed by the next run); the re-run gives the files of an uninterrupted run.
* Manifests and ``check-data``: every missing, truncated, altered, empty or undecodable file is named; broken
  manifests and folders with nothing to check are one-line errors; the experiments' cheap check re-renders a
  damaged cache and refuses a damaged ``--data`` folder before training.

Sizes are tiny (40 images at 64 px); a slowed renderer (a 50 ms sleep per image) gives the kill tests time to
strike part-way.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from PIL import Image

from fashionlab import cli
from fashionlab.datasets import manifest as mf
from fashionlab.datasets import sources
from fashionlab.synth import generate_fashionai
from fashionlab.synth.writer import remove_stale

pytestmark = pytest.mark.filterwarnings("ignore:FashionSynth.*no query:UserWarning")

REPO = Path(__file__).resolve().parents[1]
N, PX = 40, 64

#: ``python -m fashionlab ARGS`` with FashionSynth's fashionai renderer slowed by $SLOW_S seconds per image
#: (``--fashionai-data`` as first argument instead runs the experiments' automatic rendering,
#: ``sources.fashionai_data("quick", ...)``, with quick mode shrunk to 40 images at 64 px).
SLOW_MAIN = textwrap.dedent("""
    import os, runpy, signal, sys, time
    # a shell's background job starts with SIGINT ignored, and Python then keeps it ignored: restore Ctrl-C
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from fashionlab.synth.fashionai import FashionAIPreset
    _render = FashionAIPreset.render_one
    def slow(self, item, out):
        time.sleep(float(os.environ.get("SLOW_S", "0.05")))
        if os.environ.get("STALL_AT") and item["index"] >= int(os.environ["STALL_AT"]):
            time.sleep(600)  # stall: the test's signal lands part-way however loaded the machine is
        return _render(self, item, out)
    FashionAIPreset.render_one = slow
    if sys.argv[1:2] == ["--fashionai-data"]:
        from fashionlab.datasets import sources
        sources.SYNTH_SIZES["quick"] = sources.SynthSize(40, 64)
        print(sources.fashionai_data("quick", None, 0, progress=False)[0])
    else:
        sys.argv = ["fashionlab"] + sys.argv[1:]
        runpy.run_module("fashionlab", run_name="__main__", alter_sys=True)
""")


def digest(root: Path) -> dict[str, str]:
    """Every file under ``root`` (hidden ones too) and its SHA-256."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def synth_args(out: Path, *extra: str, seed: int = 2) -> list[str]:
    return ["synth", "fashionai", "--out", str(out), "--num-images", str(N), "--image-size", str(PX),
            "--seed", str(seed), "--quiet", *extra]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, str]:
    """The files of an uninterrupted run (seed 2), with the manifest."""
    out = tmp_path_factory.mktemp("reference") / "d"
    generate_fashionai(out, N, seed=2, image_size=PX, progress=False)
    return digest(out)


@pytest.fixture
def previous(tmp_path) -> tuple[Path, dict[str, str]]:
    """A previous dataset (seed 1) in ``tmp/work/d`` and its files."""
    out = tmp_path / "work" / "d"
    generate_fashionai(out, N, seed=1, image_size=PX, progress=False)
    return out, digest(out)


def image_of(root: Path) -> Path:
    return sorted((root / "Images").rglob("*.jpg"))[0]


# ------------------------------------------------------------------------------------------------ argument errors

@pytest.mark.parametrize("extra, expected", [
    (["--num-images", "-5"], "number of images must be a positive integer, got -5"),
    (["--num-images", "0"], "number of images must be a positive integer, got 0"),
    (["--workers", "0"], "workers must be a positive integer, got 0"),
    (["--seed", "-1"], "seed must be a non-negative integer, got -1"),
    (["--image-size", "4"], "image_size must be at least 16, got 4"),
])
def test_bad_arguments_are_refused_before_anything_is_written(tmp_path, capsys, extra, expected):
    out = tmp_path / "new"
    args = ["synth", "fashionai", "--out", str(out), "--num-images", "12", "--quiet", *extra]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # no folder, no hidden temporary folder


def test_bad_preset_option_is_refused_before_anything_is_written(tmp_path, capsys):
    out = tmp_path / "shop"
    assert cli.main(["synth", "shop", "--out", str(out), "--num-images", "12", "--missing-rate", "2",
                     "--quiet"]) == 2
    assert "missing_rate must lie in [0, 1], got 2.0" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_bad_arguments_leave_a_previous_dataset_alone(previous, capsys):
    out, before = previous
    assert cli.main(synth_args(out, "--num-images", "-5")) == 2
    assert "got -5" in capsys.readouterr().err
    assert digest(out) == before and sorted(p.name for p in out.parent.iterdir()) == ["d"]


# ------------------------------------------------------------------------------------------------ the target folder

def test_out_is_a_file_is_refused_naming_it(tmp_path, capsys):
    f = tmp_path / "d"
    f.write_text("mine\n")
    assert cli.main(synth_args(f)) == 2
    err = capsys.readouterr().err
    assert str(f) in err and "is a file; expected a folder" in err
    assert f.read_text() == "mine\n" and sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_foreign_folder_is_refused_untouched(tmp_path, capsys):
    out = tmp_path / "d"
    out.mkdir()
    (out / "thesis.tex").write_text("mine\n")
    assert cli.main(synth_args(out)) == 2
    err = capsys.readouterr().err
    assert str(out) in err and "not a FashionSynth dataset" in err and "thesis.tex" in err
    assert digest(out) == {"thesis.tex": hashlib.sha256(b"mine\n").hexdigest()}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_dataset_of_another_format_is_refused(tmp_path, capsys):
    out = tmp_path / "d"
    out.mkdir()
    (out / "synth.json").write_text(json.dumps({"format": "shop"}))
    assert cli.main(synth_args(out)) == 2
    assert "holds a FashionSynth dataset of format 'shop'" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["synth.json"]


def test_half_written_folder_of_an_old_in_place_run_does_not_block(tmp_path, reference):
    """An older fashionlab wrote in place: a killed run left images and split files but no synth.json."""
    out = tmp_path / "d"
    generate_fashionai(out, N, seed=2, image_size=PX, progress=False)
    for name in ("synth.json", "ground_truth.jsonl", "manifest.json", "meta.json"):
        (out / name).unlink()
    for p in sorted((out / "Images").rglob("*.jpg"))[::2]:
        p.write_bytes(p.read_bytes()[:50])
    assert cli.main(synth_args(out)) == 0
    assert digest(out) == reference


def test_users_own_files_in_a_previous_dataset_are_kept(previous, reference):
    out, _ = previous
    (out / "notes.txt").write_text("mine\n")
    assert cli.main(synth_args(out)) == 0
    after = digest(out)
    assert after.pop("notes.txt") == hashlib.sha256(b"mine\n").hexdigest()
    assert after == reference


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="permissions do not bind root")
def test_unwritable_parent_is_one_line_naming_it(tmp_path, capsys):
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o500)
    try:
        assert cli.main(synth_args(parent / "d")) == 2
    finally:
        parent.chmod(0o700)
    err = capsys.readouterr().err
    assert str(parent) in err and "Traceback" not in err
    assert list(parent.iterdir()) == []


# ------------------------------------------------------------------------------------------------ interruptions

class Boom(RuntimeError):
    pass


@pytest.mark.parametrize("exc", [Boom, KeyboardInterrupt])
def test_failure_part_way_keeps_the_previous_dataset(previous, monkeypatch, exc):
    """An exception (or Ctrl-C) while rendering item 17: the previous dataset is byte-identical, no debris."""
    from fashionlab.synth.fashionai import FashionAIPreset

    out, before = previous
    render = FashionAIPreset.render_one

    def failing(self, item, o):
        if item["index"] == 17:
            raise exc("stop")
        return render(self, item, o)

    monkeypatch.setattr(FashionAIPreset, "render_one", failing)
    with pytest.raises(exc):
        generate_fashionai(out, N, seed=2, image_size=PX, progress=False)
    assert digest(out) == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["d"]


def _start(args: list[str], env_extra: dict | None = None) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "SLOW_S": "0.05", **(env_extra or {})}
    return subprocess.Popen([sys.executable, "-c", SLOW_MAIN, *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_images(proc: subprocess.Popen, parent: Path, least: int = 5, timeout: float = 90) -> int:
    """Wait until a hidden temporary folder under ``parent`` holds ``least`` images; return how many."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            pytest.fail(f"the run ended before it could be interrupted: {proc.communicate()}")
        n = sum(1 for d in parent.glob(".*.tmp-*") for _ in d.rglob("*.jpg"))
        if n >= least:
            return n
        time.sleep(0.02)
    proc.kill()
    pytest.fail("no image appeared in a temporary folder")


@pytest.mark.parametrize("sig, workers", [("SIGTERM", 1), ("SIGINT", 1), ("SIGKILL", 1), ("SIGTERM", 2)])
def test_killed_synth_keeps_the_previous_dataset_and_the_rerun_matches(previous, reference, sig, workers):
    """``python -m fashionlab synth`` killed part-way: the previous dataset is byte-identical; SIGTERM and SIGINT
    leave no debris (exit status 143 / 130, one line; with worker processes too), SIGKILL at most the hidden
    temporary folder, which the re-run removes; the re-run gives the files of an uninterrupted run."""
    out, before = previous
    # one process stalls at item 10 so that the signal lands part-way even on a loaded machine (a 40-image run
    # once finished between the test's look and its signal); worker processes are only slowed down
    proc = _start(synth_args(out, "--workers", str(workers)), {"STALL_AT": "10"} if workers == 1 else None)
    n = _wait_for_images(proc, out.parent)
    proc.send_signal(getattr(signal, sig))
    _, err = proc.communicate(timeout=60)
    assert n < N
    assert digest(out) == before
    left = sorted(p.name for p in out.parent.iterdir())
    if sig == "SIGKILL":
        assert proc.returncode == -signal.SIGKILL
        assert left[-1] == "d" and all(name.startswith(".d.tmp-") for name in left[:-1])
    else:
        assert proc.returncode == (143 if sig == "SIGTERM" else 130), err
        assert "interrupted" in err and "Traceback" not in err
        assert left == ["d"]
    assert cli.main(synth_args(out)) == 0  # the re-run
    assert digest(out) == reference
    assert sorted(p.name for p in out.parent.iterdir()) == ["d"]


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGKILL"])
def test_killed_automatic_rendering_leaves_nothing_that_blocks(tmp_path, reference, monkeypatch, sig):
    """The experiments' build-once rendering (``sources.fashionai_data``) killed part-way: SIGTERM leaves no
    hidden ``.tmp`` folder (exit status not 0), SIGKILL at most one, removed by the next call, which renders the
    same files as an uninterrupted run."""
    data = tmp_path / "data"
    proc = _start(["--fashionai-data"], {"FASHIONLAB_DATA": str(data)})
    root = data / "synth"
    while not root.is_dir():
        time.sleep(0.02)
        assert proc.poll() is None, proc.communicate()
    _wait_for_images(proc, root)
    proc.send_signal(getattr(signal, sig))
    proc.communicate(timeout=60)
    assert proc.returncode != 0
    left = [p.name for p in root.iterdir()]
    assert left == [] if sig == "SIGTERM" else all(n.startswith(".fashionai-n40-s0-px64.tmp-") for n in left)
    monkeypatch.setenv("FASHIONLAB_DATA", str(data))
    monkeypatch.setitem(sources.SYNTH_SIZES, "quick", sources.SynthSize(N, PX))
    path, _ = sources.fashionai_data("quick", None, 0, progress=False)
    assert [p.name for p in root.iterdir()] == [path.name]
    got = digest(path)
    assert json.loads(got and (path / ".complete").read_text()) == {"version": json.loads(
        (path / "synth.json").read_text())["version"]}
    got.pop(".complete")
    generate_fashionai(tmp_path / "uninterrupted", N, seed=0, image_size=PX, progress=False)
    assert got == digest(tmp_path / "uninterrupted")


def test_debris_of_killed_runs_is_cleared_and_a_dataset_moved_aside_is_restored(previous, tmp_path):
    """SIGKILL between the two renames of the swap leaves the previous dataset under a hidden ``.old`` name and
    no ``d``: the next run puts it back first. A hidden ``.tmp`` folder of a dead process is removed; one of a
    running process is left alone."""
    out, before = previous
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    aside = out.parent / f".d.old-{dead}-0123abcd"
    os.rename(out, aside)
    (out.parent / f".d.tmp-{dead}-89abcdef").mkdir()
    (out.parent / f".d.tmp-{dead}-89abcdef" / "half.jpg").write_bytes(b"\xff\xd8")
    alive = out.parent / f".d.tmp-{os.getppid()}-00000000"
    alive.mkdir()
    remove_stale(out)
    assert digest(out) == before
    assert sorted(p.name for p in out.parent.iterdir()) == [alive.name, "d"]


# ------------------------------------------------------------------------------------------------ manifest, check-data

def check(capsys, *args: str) -> tuple[int, str, str]:
    rc = mf.main(list(args))
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


@pytest.fixture
def dataset(tmp_path) -> Path:
    out = tmp_path / "d"
    generate_fashionai(out, N, seed=3, image_size=PX, progress=False)
    return out


def test_manifest_lists_every_file_with_size_and_hash(dataset, capsys):
    m = json.loads((dataset / "manifest.json").read_text())
    files = {e["path"]: e for e in m["files"]}
    assert m["algorithm"] == "sha256" and set(files) == set(digest(dataset)) - {"manifest.json"}
    img = image_of(dataset).relative_to(dataset).as_posix()
    assert files[img]["size"] == image_of(dataset).stat().st_size
    assert files[img]["sha256"] == hashlib.sha256(image_of(dataset).read_bytes()).hexdigest()
    rc, out, _ = check(capsys, str(dataset))
    assert rc == 0 and "intact" in out and f"checked {len(files)} file(s)" in out


def test_check_data_names_every_missing_truncated_or_altered_file(dataset, capsys):
    imgs = sorted((dataset / "Images").rglob("*.jpg"))
    size = imgs[0].stat().st_size
    imgs[0].write_bytes(imgs[0].read_bytes()[:100])  # truncated
    imgs[1].unlink()  # missing
    data = bytearray(imgs[2].read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, other bytes
    imgs[2].write_bytes(bytes(data))
    (dataset / "label_train.txt").write_text("")  # emptied
    rc, out, _ = check(capsys, str(dataset))
    assert rc == 1
    assert f"{imgs[0]}: 100 bytes, expected {size} (truncated or changed)" in out
    assert f"{imgs[1]}: missing" in out
    assert f"{imgs[2]}: content differs from the manifest (SHA-256 mismatch)" in out
    assert f"{dataset / 'label_train.txt'}: 0 bytes, expected" in out
    assert "4 of " in out and "missing or damaged" in out
    # --quick: sizes only (what the experiments run): the same-size change is not seen
    rc, out, _ = check(capsys, str(dataset), "--quick")
    assert rc == 1 and str(imgs[0]) in out and str(imgs[1]) in out and str(imgs[2]) not in out


def test_check_data_notes_files_not_in_the_manifest(dataset, capsys):
    (dataset / "notes.txt").write_text("mine\n")
    rc, out, _ = check(capsys, str(dataset))
    assert rc == 0 and "1 file(s) not in the manifest" in out and "notes.txt" in out


@pytest.mark.parametrize("text, expected", [
    ("{not json", "unreadable manifest"),
    (json.dumps({"files": []}), "not a fashionlab manifest"),
    (json.dumps({"algorithm": "sha256", "files": [{"path": "../etc/passwd", "size": 1, "sha256": "0" * 64}]}),
     "files[0] is not a valid entry"),
    (json.dumps({"algorithm": "sha256", "files": [{"path": "a.jpg", "size": "12", "sha256": "0" * 64}]}),
     "files[0] is not a valid entry"),
])
def test_broken_manifest_is_one_line_naming_it(dataset, capsys, text, expected):
    (dataset / "manifest.json").write_text(text)
    rc, out, err = check(capsys, str(dataset))
    assert rc == 2 and f"{dataset / 'manifest.json'}: {expected}" in err and "Traceback" not in err


def test_check_data_on_a_real_folder_without_manifest(tmp_path, capsys):
    """ASEN split files name the images: missing, empty and undecodable ones are named; good ones pass."""
    root = tmp_path / "FashionAI"
    (root / "Images").mkdir(parents=True)
    Image.new("RGB", (8, 8), (200, 10, 10)).save(root / "Images" / "good.jpg")
    Image.new("I;16", (8, 8), 40000).save(root / "Images" / "grey16.png")
    (root / "Images" / "empty.jpg").write_bytes(b"")
    good = (root / "Images" / "good.jpg").read_bytes()
    (root / "Images" / "cut.jpg").write_bytes(good[: len(good) // 2])
    (root / "Images" / "text.jpg").write_text("not an image\n")
    (root / "filenames_train.txt").write_text("Images/good.jpg\nImages/grey16.png\nImages/empty.jpg\n")
    (root / "filenames_test.txt").write_text("Images/cut.jpg\r\nImages/text.jpg\r\nImages/gone.jpg\r\n")
    rc, out, _ = check(capsys, str(root))
    assert rc == 1
    assert f"{root / 'Images/empty.jpg'}: empty (0 bytes)" in out
    assert f"{root / 'Images/cut.jpg'}: does not decode as an image" in out
    assert f"{root / 'Images/text.jpg'}: does not decode as an image" in out
    assert f"{root / 'Images/gone.jpg'}: missing" in out
    assert "good.jpg" not in out and "grey16" not in out
    assert "checked 6 file(s) against ASEN split files" in out and "4 of 6" in out
    rc, out, _ = check(capsys, str(root), "--quick")  # no decoding
    assert rc == 1 and "cut.jpg" not in out and "gone.jpg: missing" in out


def test_check_data_reads_deepfashion_and_deepfashion2_layouts(tmp_path, capsys):
    root = tmp_path / "df"
    (root / "Eval").mkdir(parents=True)
    (root / "img" / "Blouse").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(root / "img" / "Blouse" / "img_00000001.jpg")
    (root / "Eval" / "list_eval_partition.txt").write_text(
        "2\nimage_name  evaluation_status\nimg/Blouse/img_00000001.jpg  train\nimg/Blouse/img_00000002.jpg  val\n")
    (root / "train" / "annos").mkdir(parents=True)
    (root / "train" / "image").mkdir()
    (root / "train" / "annos" / "000001.json").write_text('{"source": "shop"')
    Image.new("RGB", (8, 8)).save(root / "train" / "image" / "000001.jpg")
    (root / "train" / "annos" / "000002.json").write_text("{}")
    rc, out, _ = check(capsys, str(root))
    assert rc == 1
    assert f"{root / 'img/Blouse/img_00000002.jpg'}: missing" in out
    assert f"{root / 'train/annos/000001.json'}: is not valid JSON" in out
    assert f"{root / 'train/image/000002.jpg'}: missing" in out
    assert "DeepFashion list files" in out and "DeepFashion2" in out


def test_check_data_on_nothing_checkable_is_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    rc, _, err = check(capsys, str(tmp_path / "empty"))
    assert rc == 2 and f"{tmp_path / 'empty'}: no manifest (manifest.json) and no split or label files" in err
    assert "expected filenames_*.txt (ASEN)" in err
    rc, _, err = check(capsys, str(tmp_path / "nowhere"))
    assert rc == 2 and f"{tmp_path / 'nowhere'}: not a folder" in err


def test_check_data_through_the_fashionlab_command(dataset, capsys):
    """The ``check-data`` sub-command (wired in fashionlab.cli) reports as the module's own main does."""
    if "check-data" not in cli.build_parser().format_help():
        pytest.skip("check-data is not wired into fashionlab.cli yet")
    image_of(dataset).unlink()
    assert cli.main(["check-data", str(dataset)]) == 1
    assert f"{image_of(dataset).parent}" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------------ before training

@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """The experiments' FashionSynth cache, quick mode shrunk to 40 images at 64 px, rendered once."""
    monkeypatch.setenv("FASHIONLAB_DATA", str(tmp_path / "data"))
    monkeypatch.setitem(sources.SYNTH_SIZES, "quick", sources.SynthSize(N, PX))
    path, _ = sources.fashionai_data("quick", None, 0, progress=False)
    return path


@pytest.mark.parametrize("damage", ["truncate", "delete", "empty"])
def test_damaged_cache_is_detected_and_rendered_again(cache, capsys, damage):
    before = digest(cache)
    img = image_of(cache)
    if damage == "truncate":
        img.write_bytes(img.read_bytes()[:200])
    elif damage == "delete":
        img.unlink()
    else:
        img.write_bytes(b"")
    capsys.readouterr()
    path, _ = sources.fashionai_data("quick", None, 0, progress=False)
    err = capsys.readouterr().err
    assert path == cache and digest(cache) == before
    assert f"{cache}: 1 file(s) missing or damaged: {img.relative_to(cache).as_posix()}" in err
    assert "rendering it again" in err
    assert sorted(p.name for p in cache.parent.iterdir()) == [cache.name]


def test_cache_of_an_older_fashionlab_without_manifest_is_checked_once(cache, capsys):
    before = digest(cache)
    (cache / "manifest.json").unlink()
    sources.fashionai_data("quick", None, 0, progress=False)
    assert digest(cache) == before  # intact: adopted, the manifest written again, nothing rendered
    (cache / "manifest.json").unlink()
    img = image_of(cache)
    img.write_bytes(img.read_bytes()[:300])  # same name, cut: only decoding can tell
    capsys.readouterr()
    sources.fashionai_data("quick", None, 0, progress=False)
    assert "does not decode as an image" in capsys.readouterr().err
    assert digest(cache) == before


def test_damaged_data_folder_is_refused_before_training(dataset, tmp_path, capsys):
    """``reproduce --data DIR`` with a truncated image: one line naming it, before any training."""
    img = image_of(dataset)
    img.write_bytes(img.read_bytes()[:100])
    t0 = time.perf_counter()
    assert cli.main(["reproduce", "triplet-baseline", "--mode", "quick", "--data", str(dataset), "--out",
                     str(tmp_path / "r"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"{img.relative_to(dataset).as_posix()}: 100 bytes, expected" in err and "check-data" in err
    assert "Traceback" not in err and time.perf_counter() - t0 < 30
    assert not (tmp_path / "r" / "triplet-baseline.json").exists()


def test_real_folder_missing_images_is_refused_but_the_random_baseline_needs_none(dataset, monkeypatch):
    """A folder without a manifest whose ``filenames_*.txt`` name a missing image: refused for experiments
    that read images (``FASHIONLAB_FASHIONAI`` too); the random baseline reads none and is not refused."""
    (dataset / "manifest.json").unlink()
    (dataset / "ground_truth.jsonl").unlink()
    img = image_of(dataset)
    img.unlink()
    with pytest.raises(FileNotFoundError, match=f"1 file\\(s\\) missing or damaged: .*{img.name}: missing"):
        sources.fashionai_data("quick", dataset, 0)
    monkeypatch.setenv("FASHIONLAB_FASHIONAI", str(dataset))
    with pytest.raises(FileNotFoundError, match=img.name):
        sources.fashionai_data("quick", None, 0)
    assert sources.fashionai_data("quick", dataset, 0, check_images=False)[0] == dataset  # random-baseline's call
