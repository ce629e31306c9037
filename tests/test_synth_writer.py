"""FashionSynth's shared writer (fashionlab.synth.writer), the synth command table (fashionlab.synth.cli) and the
public geometry module: a tiny fake preset written through the writer, the build-once cache (an interrupted
generation never leaves a dataset that looks complete), the CLI declarations, and no private cross-module
imports inside fashionlab.synth."""
from __future__ import annotations

import argparse
import ast
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from fashionlab.synth import cli as synth_cli
from fashionlab.synth import generate_fashionai
from fashionlab.synth.writer import Preset, ensure, generate, load_ground_truth, write_lines

SYNTH_DIR = Path(__file__).resolve().parents[1] / "fashionlab" / "synth"


@dataclass(frozen=True)
class TinyConfig:
    image_size: int = 4

    def to_dict(self) -> dict:
        return {"image_size": self.image_size}


@dataclass
class TinyPreset(Preset):
    """A fake preset: each item is a text "picture" holding a number drawn from ``[seed, index]``."""

    name = "tiny"
    version = "0.1"
    label = "Tiny"
    own_files = ("list_train.txt", "list_test.txt")
    image_globs = ("img/*.txt",)
    folders = ("img",)

    seed: int
    config: TinyConfig = field(default_factory=TinyConfig)
    fail_at: int | None = None

    def plan(self, num):
        if num < 1:
            raise ValueError("num must be positive")
        return [{"index": i, "split": "test" if i % 4 == 0 else "train"} for i in range(num)]

    def render_one(self, item, out):
        i = item["index"]
        if i == self.fail_at:
            raise RuntimeError(f"interrupted at item {i}")
        value = int(np.random.default_rng([self.seed, i]).integers(1000))
        name = f"img/{i:03d}.txt"
        if out is not None:
            (out / name).write_text(f"{value}\n")
        return {"index": i, "split": item["split"], "file": name, "value": value, "_scratch": [i]}, 0.001

    def write_splits(self, out, records):
        assert [r["index"] for r in records] == list(range(len(records)))  # index order
        assert all(r["_scratch"] == [r["index"]] for r in records)  # working keys reach write_splits
        for s in ("train", "test"):
            write_lines(out / f"list_{s}.txt", (r["file"] for r in records if r["split"] == s))
        splits = {s: sum(r["split"] == s for r in records) for s in ("train", "test")}
        return {"seed": self.seed, "splits": splits}, {"total": sum(r["value"] for r in records)}

    def folder_name(self, num):
        return f"tiny-n{num}-s{self.seed}"


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_generate_writes_the_preset_files_ground_truth_and_synth_json(tmp_path, capsys):
    out = tmp_path / "d"
    stats = generate(TinyPreset(seed=3), out, 40, progress=True)
    printed = capsys.readouterr().out
    assert "Tiny: 40/40 images" in printed and "Tiny: 40 images (4 px) in" in printed
    assert stats["num_images"] == 40 and stats["splits"] == {"train": 30, "test": 10} and stats["seed"] == 3
    assert stats["render_seconds"] == pytest.approx(0.04) and stats["images_per_second"] == pytest.approx(1000)
    assert {"seconds", "written_per_second", "total", "out_dir", "image_size"} <= set(stats)
    assert len(list((out / "img").glob("*.txt"))) == 40
    assert (out / "list_test.txt").read_text().split() == [f"img/{i:03d}.txt" for i in range(0, 40, 4)]
    synth = json.loads((out / "synth.json").read_text())
    assert list(synth)[:4] == ["generator", "version", "format", "seed"]
    assert (synth["generator"], synth["version"], synth["format"]) == ("FashionSynth", "0.1", "tiny")
    recs = load_ground_truth(out)
    assert [r["index"] for r in recs] == list(range(40))
    assert all("_scratch" not in r for r in recs)  # working keys are not written
    assert stats["total"] == sum(r["value"] for r in recs)
    test = load_ground_truth(out, "test", splits=("train", "test"), id_key="index")
    assert [r["index"] for r in test] == list(range(0, 40, 4))
    with pytest.raises(ValueError, match="unknown split"):
        load_ground_truth(out, "val", splits=("train", "test"))


def test_same_seed_same_bytes_whatever_the_workers(tmp_path):
    generate(TinyPreset(seed=5), tmp_path / "a", 70, progress=False)
    generate(TinyPreset(seed=5), tmp_path / "b", 70, progress=False, workers=2)
    generate(TinyPreset(seed=6), tmp_path / "c", 70, progress=False)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_regenerating_replaces_own_files_and_refuses_other_folders(tmp_path):
    out = tmp_path / "d"
    generate(TinyPreset(seed=1), out, 12, progress=False)
    (out / "notes.txt").write_text("mine")  # not the preset's: kept
    generate(TinyPreset(seed=1), out, 5, progress=False)
    assert sorted(p.name for p in (out / "img").iterdir()) == [f"{i:03d}.txt" for i in range(5)]
    assert (out / "notes.txt").read_text() == "mine"
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "x.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a Tiny dataset"):
        generate(TinyPreset(seed=1), foreign, 5, progress=False)
    assert sorted(p.name for p in foreign.iterdir()) == ["x.txt"]
    # a dataset of another preset is refused too, and bad options fail before the folder is touched
    other = tmp_path / "other"
    other.mkdir()
    (other / "synth.json").write_text(json.dumps({"format": "shop"}))
    with pytest.raises(FileExistsError):
        generate(TinyPreset(seed=1), other, 5, progress=False)
    with pytest.raises(ValueError, match="positive"):
        generate(TinyPreset(seed=1), out, 0, progress=False)
    assert len(list((out / "img").iterdir())) == 5


def test_interrupted_generation_is_never_marked_complete(tmp_path):
    root = tmp_path / "cache"
    with pytest.raises(RuntimeError, match="interrupted"):
        ensure(TinyPreset(seed=2, fail_at=7), 20, root=root, progress=False)
    assert not (root / "tiny-n20-s2").exists()
    assert list(root.iterdir()) == []  # the temporary folder is gone too
    # a folder left by a direct, interrupted generate: images but no synth.json, no marker
    with pytest.raises(RuntimeError):
        generate(TinyPreset(seed=2, fail_at=7), root / "tiny-n20-s2", 20, progress=False)
    assert not (root / "tiny-n20-s2" / ".complete").exists()
    path = ensure(TinyPreset(seed=2), 20, root=root, progress=False)
    assert path == root / "tiny-n20-s2"
    assert json.loads((path / ".complete").read_text()) == {"version": "0.1"}
    assert len(load_ground_truth(path)) == 20
    before = _digest(path)
    # complete: a second ensure does not render again (a preset that would fail is not called)
    assert ensure(TinyPreset(seed=2, fail_at=0), 20, root=root, progress=False) == path
    assert _digest(path) == before
    # another generator version is rebuilt
    TinyV2 = type("TinyV2", (TinyPreset,), {"version": "0.2"})
    assert ensure(TinyV2(seed=2), 20, root=root, progress=False) == path
    assert json.loads((path / ".complete").read_text()) == {"version": "0.2"}
    assert sorted(p.name for p in root.iterdir()) == ["tiny-n20-s2"]


def test_a_preset_must_implement_the_interface():
    @dataclass
    class Half(Preset):
        name, version, label = "half", "0", "Half"
        seed: int = 0

        def plan(self, num):
            return []

    with pytest.raises(TypeError):
        Half()


# ------------------------------------------------------------------------------------------------ command line

def _synth_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fashionlab")
    synth_cli.add_synth_parser(p.add_subparsers(dest="command", required=True))
    return p


def test_synth_commands_keep_their_names_options_and_defaults():
    p = _synth_parser()
    a = p.parse_args(["synth", "fashionai", "--out", "D", "--num-images", "7"])
    assert (a.synth_command, a.out, a.num_images, a.seed, a.image_size, a.preset, a.workers, a.quiet) == \
        ("fashionai", "D", 7, 0, 128, "wild", 1, False)
    assert a.func is synth_cli.run_synth
    a = p.parse_args(["synth", "fashionai", "--out", "D", "--num-images", "7", "--preset", "clean"])
    assert a.preset == "clean" and a.synth_command == "fashionai"
    a = p.parse_args(["synth", "shop", "--out", "D", "--num-images", "9", "--designs", "4"])
    assert (a.designs, a.missing_rate, a.image_size, a.workers) == (4, 0.1, 128, 1)
    a = p.parse_args(["synth", "multilabel", "--out", "D", "--num-images", "9", "--seed", "3"])
    assert (a.seed, a.image_size, a.workers) == (3, 64, 1)
    a = p.parse_args(["synth", "outfit", "--out", "D", "--scenes", "9", "--quiet"])
    assert (a.scenes, a.crop_size, a.image_size, a.workers, a.quiet) == (9, 64, 128, None, True)
    with pytest.raises(SystemExit):
        p.parse_args(["synth", "outfit", "--out", "D", "--num-images", "9"])  # outfit counts scenes
    with pytest.raises(SystemExit):
        p.parse_args(["synth", "shop", "--num-images", "9"])  # --out is required
    # each preset's own options are declared once, on its COMMAND
    cmds = synth_cli.commands()
    assert list(cmds) == ["fashionai", "shop", "multilabel", "outfit"]
    assert [o.flag for o in cmds["shop"].options] == ["--designs", "--missing-rate"]
    assert [o.flag for o in cmds["outfit"].options] == ["--crop-size"]


def test_synth_command_runs_the_generator(tmp_path, capsys):
    a = _synth_parser().parse_args(["synth", "fashionai", "--out", str(tmp_path / "cli"), "--num-images", "12",
                                    "--seed", "4", "--image-size", "32", "--preset", "clean", "--quiet"])
    with pytest.warns(UserWarning, match="no query"):
        assert a.func(a) == 0
    assert capsys.readouterr().out.startswith(f"wrote 12 images to {tmp_path / 'cli'} (rendering")
    with pytest.warns(UserWarning, match="no query"):
        generate_fashionai(tmp_path / "direct", 12, seed=4, image_size=32, config="clean", progress=False)
    assert _digest(tmp_path / "cli") == _digest(tmp_path / "direct")


# ------------------------------------------------------------------------------------------------ modules

def test_no_synth_module_imports_a_private_name_of_another_module():
    bad = []
    for path in sorted(SYNTH_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.level > 0 or (node.module or "").startswith("fashionlab")):
                bad += [f"{path.name}:{node.lineno}: {a.name}" for a in node.names if a.name.startswith("_")]
    assert not bad, bad


def test_geometry_is_public_and_garments_reexports_its_vocabulary():
    from fashionlab.synth import garments, geometry

    for name in geometry.__all__:
        assert not name.startswith("_") and getattr(geometry, name) is not None
        obj = getattr(geometry, name)
        if callable(obj):
            assert obj.__doc__, f"geometry.{name} has no docstring"
    assert garments.LENGTHS is geometry.LENGTHS and garments.DEFAULT_FASTENING is geometry.DEFAULT_FASTENING
    geo = geometry.garment_geometry("coat", (0, 3, 4, 0, 0, 1, 0, 0), (0.0,) * 8, 1.06, 0.5)
    assert set(geo.regions) >= {"sleeve_length", "coat_length", "lapel_design"}
    assert geometry.mirror([(1.0, 2.0)]) == [(-1.0, 2.0)]
