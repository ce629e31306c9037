"""Append (or refresh) the "Run it for real" section at the end of every notebook (issue 20, part 6).

Each notebook ends with one markdown cell, tagged ``run-for-real``, that says how to run its experiment in
``full`` mode on a GPU on the real dataset: the command, the folder layout, the ImageNet weights, several GPUs,
and what to expect (the paper's numbers, the run time). The texts live here, in :data:`SECTIONS`.

Usage: ``python tools/run_for_real.py [FOLDER]`` (default: the repository's ``notebooks/``). Idempotent: a
notebook that already ends with the same cell is left byte for byte as it was. The notebooks are written as
Jupyter writes them (``json.dump(nb, f, indent=1, ensure_ascii=False)`` and a final newline). Standard library
only.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

TAG = "run-for-real"
TITLE = "## Run it for real"
CELL_ID = "run-for-real"

# What every section says the same way.
GPUS = ("* **Several GPUs.** `torchrun --nproc_per_node=N -m fashionlab reproduce {name} --mode full ...` runs one "
        "process per GPU ([docs/distributed.md](../docs/distributed.md)).")
LOADING = ("* **Loading.** In `full` mode and with `--data`, DataLoader workers stream the images from disk; "
           "`FASHIONLAB_WORKERS=N` sets how many.")
ENV = ("* **Without flags** (this notebook, too): `FASHIONLAB_MODE=full`, `FASHIONLAB_DEVICE=cuda`, "
       "`FASHIONLAB_DATA` (FashionSynth caches and trained models), `FASHIONLAB_RESULTS` (where `{name}.json` and "
       "`{name}.md` go){extra}.")
WEIGHTS = ("* **ImageNet weights.** `full` builds the paper's backbone ({what}) and starts it from scratch "
           "unless you add `--pretrained imagenet` (or set `FASHIONLAB_PRETRAINED=imagenet`), which starts it "
           "from torchvision's ImageNet file ({files}), as the paper does; the results files record the start. "
           "The file is looked for in `torch.hub.get_dir()/checkpoints` (`TORCH_HOME` moves it; "
           "`fashionlab.models.backbones.pretrained_weights_file(name)` prints the path), offline by default: "
           "`--download-weights` or `FASHIONLAB_DOWNLOAD_WEIGHTS=1` let torchvision download it there. A missing "
           "file stops the run before any training, with the path to put it in.")
NO_TIME = ("This repository has not yet measured a full-mode run on a GPU (no GPU was available when it was "
           "written); `make gpu-check` prints images/s per model on a CUDA machine, from which you can size "
           "the run.")
FASHIONAI_GET = ("FashionAI's images come from Alibaba's Tianchi FashionAI Global Challenge 2018 "
                 "(`fashionAI_attributes_train1.zip`, `fashionAI_attributes_train2.zip`; a login is needed), the "
                 "ASEN split files (`filenames_*.txt`, `label_train.txt`, `query_*.txt`, `candidate_*.txt`, "
                 "`meta.json`) from [Maryeon/asen](https://github.com/Maryeon/asen) or "
                 "[Maryeon/asenpp](https://github.com/maryeon/asenpp). Put the split files and the unzipped "
                 "`fashionAI_attributes_train{1,2}/` folders in one folder, `DIR` "
                 "([docs/formats.md §5.1](../docs/formats.md#51-asen--asen-split-files), "
                 "[§5.2](../docs/formats.md#52-fashionai-labelcsv), [docs/papers.md](../docs/papers.md#datasets)).")


def _cmd(*names: str) -> str:
    return "\n".join(f"fashionlab reproduce {n} --mode full --data DIR --device cuda" for n in names)


SECTIONS: dict[str, str] = {}

SECTIONS["00_attributes_data_protocol"] = f"""{TITLE}

What you ran here on FashionSynth runs on the real benchmarks. Both experiments read the ASEN split layout:

```
{_cmd("random-baseline", "triplet-baseline")}
```

* **Data.** {FASHIONAI_GET} `random-baseline` reads no image, so the split files alone (also DARN's and \
DeepFashion's, from the same repositories) reproduce its row; `triplet-baseline` needs the images. \
`FASHIONLAB_FASHIONAI=DIR` does what `--data DIR` does, for the experiments of notebooks 00 to 03.
{WEIGHTS.format(what="ResNet-50 cut after layer3, 224 px, 1024-d, batch 16, lr 1e-4, as the ASEN code", files="`resnet50-0676ba61.pth`")}
{GPUS.format(name="triplet-baseline")}
{LOADING}
{ENV.format(name="NAME", extra="")}
* **Expect.** The ASEN slides' comparison to baselines, overall MAP: FashionAI, Random baseline 15.79, \
Triplet network 38.52; DARN 32.26 and 40.14; DeepFashion 3.38 and 7.36. The random row needs no training: \
on the real FashionAI test split this repository measured 15.79. The slides give no training time. {NO_TIME}
"""

SECTIONS["01_multicolumn_recognition"] = f"""{TITLE}

Paper 01 trained on FashionAI's first archive (79,573 images) with an ImageNet VGG-16. The `recognition` \
experiment reads the ASEN split layout of FashionAI:

```
{_cmd("recognition")}
```

* **Data.** {FASHIONAI_GET} `FASHIONLAB_FASHIONAI=DIR` is the same as `--data DIR`. On real data the metric \
`accuracy (unannotated dims)` is skipped: only one dimension per image is annotated there.
* **What `full` changes.** the paper's VGG-16 up to pool5 at 224 px for every method, 30 epochs of 28,800 \
triplets; not the paper's lr 1e-5 decayed after 100 and 150 epochs.
{WEIGHTS.format(what="VGG-16, all layers before pool5, global average pooling", files="`vgg16-397923af.pth`")}
{GPUS.format(name="recognition")}
{LOADING}
{ENV.format(name="recognition", extra="")}
* **Expect.** No number to compare with: paper 01 shows Fig. 4 only as a bar chart, with no value in its \
text. Compare the *order* of SC, MC and the joint models instead. The paper gives no training time or \
hardware. {NO_TIME}
"""

SECTIONS["02_conditional_similarity"] = f"""{TITLE}

The `retrieval` experiment (paper 01, Table II) reads the ASEN split layout of FashionAI:

```
{_cmd("retrieval")}
```

* **Data.** {FASHIONAI_GET} `FASHIONLAB_FASHIONAI=DIR` is the same as `--data DIR`.
* **What `full` changes.** the paper's VGG-16 up to pool5 at 224 px for every method of Table II, 30 epochs \
of 28,800 triplets; the paper trained at lr 1e-5 for 150+ epochs.
{WEIGHTS.format(what="VGG-16, all layers before pool5", files="`vgg16-397923af.pth`")}
{GPUS.format(name="retrieval")}
{LOADING}
{ENV.format(name="retrieval", extra="")}
* **Expect.** Table II's values appear only in the table, not in the paper's text; the text states one: \
SiaNet "only reached an accuracy of 0.604" (validation triplet accuracy), and the multi-column model with \
the modified CSN "upgraded the accuracy by nearly 4% more that CSN itself". Paper 01 built its own triplets \
on a 0.7/0.3 split of 79,573 images, so expect the order, not the values. No training time or hardware is \
given. {NO_TIME}
"""

SECTIONS["03_asen_attention"] = f"""{TITLE}

The `asen` experiment reads the ASEN split layout of FashionAI:

```
{_cmd("asen")}
```

* **Data.** {FASHIONAI_GET} `FASHIONLAB_FASHIONAI=DIR` is the same as `--data DIR`. Real FashionAI has no \
region boxes, so the `pointing game` and `box IoU` rows are skipped.
{WEIGHTS.format(what="global ResNet-50 and local ResNet-34, each cut after layer3, a 224 px view of a 448 px image, 112 px crops, 1024-d", files="`resnet50-0676ba61.pth`, `resnet34-b627a593.pth`")}
{GPUS.format(name="asen")}
{LOADING}
{ENV.format(name="asen", extra="")}
* **Expect.** The ASEN slides, "Comparison to baselines", FashionAI, overall MAP: Triplet network 38.52, \
CSN 53.52, ASEN_g 60.60, ASEN_l 50.34, ASEN 64.31; "Study on attention and loss function": ASEN_g w/o ASA \
54.27, w/o ACA 58.53; "Study on localization strategy": ASEN_full 60.81. The slides give no training time. \
{NO_TIME}
"""

SECTIONS["04_part_guided_search"] = f"""{TITLE}

The `part-search` experiment reads the ADDE split layout:

```
{_cmd("part-search")}
```

* **Data.** Paper 04's Shopping100k is not downloadable: its images must be requested from the author (the \
README of [amzn/fashion-attribute-disentanglement](https://github.com/amzn/fashion-attribute-disentanglement) \
says how); that repository holds the split files (`imgs_*.txt`, `labels_*.txt`, `attr_num.txt`, ..., as \
git-LFS pointers). `DIR` holds them with the images \
([docs/formats.md §5.6](../docs/formats.md#56-adde-split-files)) **plus** `meta.json`, `query_test.txt` and \
`gallery_test.txt`, which FashionSynth writes and ADDE does not ship: you write them yourself. No \
ground truth there, so the part rows are skipped. This has never run on the real images.
* **What `full` changes.** 24,000 images from 10,000 designs rendered at 128 px (where jump detection was \
tuned), the networks on the paper's AlexNet up to conv5 at 224 px (a 13 x 13 map at stride 16 for the part \
boxes' RoI pooling).
{WEIGHTS.format(what="AlexNet up to conv5", files="`alexnet-owt-7be5be79.pth`")}
{GPUS.format(name="part-search")}
{LOADING} Jump detection's parts are found in one streamed pass over each split before training; only \
the boxes are kept.
{ENV.format(name="part-search", extra="; `FASHIONLAB_FASHIONAI` plays no part here")}
* **Expect.** Paper 04, §7.1: Proposed 56.5% top-20 direct; §7.2: top-20 after manipulation, Proposed \
53.1%, AMNET 45.8%, w/o parts & ranking 40.1%, Classic 33.2%; Table 2 (top-20 per manipulated attribute, \
Proposed): Pattern 0.54, Collar 0.60, Fastening 0.35, Sleeve Length 0.46, Color 0.72. §7.6: trained on a \
GeForce GTX TITAN X; part extraction "about 0.1s per image", features of 7,500 images in 60 seconds (classic: \
10,000). No training time is given. {NO_TIME}
"""

SECTIONS["05_m3net"] = f"""{TITLE}

The `m3net` experiment has two halves; `--data` replaces only the multi-label one:

```
{_cmd("m3net")}
```

* **Data.** DeepFashion's Category and Attribute Prediction benchmark from the \
[DeepFashion page](https://liuziwei7.github.io/projects/DeepFashion.html) (a password form): `img/`, \
`Anno/list_*.txt`, `Eval/list_eval_partition.txt` \
([docs/formats.md §5.3](../docs/formats.md#53-deepfashion-list-files)), with ASEN's DeepFashion split files \
beside them in `DIR` ([§5.1](../docs/formats.md#51-asen--asen-split-files)). Paper 05 split DeepFashion its \
own way (its Table 1) and did not publish that split, so your numbers sit on ASEN's split. This has never run \
on the real images.
* **The FashionAI half has no real-data path:** it always renders FashionSynth; neither `--data` nor \
`FASHIONLAB_FASHIONAI` reaches it.
{WEIGHTS.format(what="ResNet-50 cut after layer3, 224 px, 1024-d, 40k triplets per epoch, lr 1e-4, batch 16, as §4.2", files="`resnet50-0676ba61.pth`")}
{GPUS.format(name="m3net")}
{LOADING}
{ENV.format(name="m3net", extra="")}
* **Expect.** Paper 05, Table 2 (DeepFashion, overall): M3-Net MAP@all 21.78, MAP@100 35.08, Recall@100 \
12.88; ASEN 12.33, 20.60, 5.10. Table 3 (FashionAI, overall): M3-Net 75.04, 87.04, 32.01; ASEN 57.37, \
64.70, 22.77. The paper gives no training time or hardware. {NO_TIME}
"""

SECTIONS["06_hls_pipeline"] = f"""{TITLE}

The `hls` experiment reads one folder in the outfit preset's layout:

```
{_cmd("hls")}
```

* **Data.** `DIR` holds `annotations/instances_{{train,validation,test}}.json` (COCO detection JSON *with* \
the extra keys `garment_categories`, `attribute_names` and the category-attribute hierarchy), \
`{{split}}/image/`, and the ground-truth crops under `crops/` in DeepFashion's list-file layout \
([docs/formats.md §5.3](../docs/formats.md#53-deepfashion-list-files), \
[§5.4](../docs/formats.md#54-deepfashion2-annotations)). **No public dataset comes in this form.** \
[DeepFashion2](https://github.com/switchablenorms/DeepFashion2) has boxes but no attributes (stage 1 only; \
`read_deepfashion2` and `to_coco` convert it); [DeepFashion](https://liuziwei7.github.io/projects/DeepFashion.html) \
has categories and attributes on single-garment photos; the paper's Mallzee dataset is its own. Building \
`DIR` from them is your conversion; nothing has run on real images.
* **What `full` changes.** 20,000 scenes at 256 px; stage 2 on the paper's EfficientNet-B4 with 224 px crops \
(B4's own size is 380), stage 1 a Faster R-CNN on ResNet-50 up to layer3 (torchvision has no InceptionV2, the \
paper's detector backbone).
{WEIGHTS.format(what="EfficientNet-B4 for stage 2, ResNet-50 for the detector", files="`efficientnet_b4_rwightman-23ab8bcd.pth`, `resnet50-0676ba61.pth`")}
{GPUS.format(name="hls")}
{LOADING} The scenes, the crops and the detected crops alike.
{ENV.format(name="hls", extra="; `FASHIONLAB_FASHIONAI` plays no part here")}
* **Expect.** Paper 06, Table 4, Faster R-CNN trained and evaluated on DF2: mAP 73.0, AR@100 83.7 (Mallzee: \
80.6, 85.8). Table 7 (DeepFashion), STL w/ HLS: category top-3 93.99, attributes top-3 36.20 (altered \
recall 66.19); Baseline STL 93.71 and 34.71 (65.79). The paper gives no training time. {NO_TIME}
"""

SECTIONS["07_pretraining"] = f"""{TITLE}

On a GPU the same pretraining runs at the papers' sizes, and the ImageNet start this notebook stands in for is one
flag away:

```
fashionlab pretrain --mode full --device cuda
fashionlab reproduce NAME --mode full --data DIR --device cuda --pretrained fashionsynth --out results/fashionsynth
fashionlab reproduce NAME --mode full --data DIR --device cuda --pretrained imagenet --out results/imagenet
```

* **Pretraining.** `fashionlab pretrain --mode full` pretrains every backbone of the full configs (ResNet-50 and \
ResNet-34 cut after layer3, VGG-16 to conv5, AlexNet, EfficientNet-B4) on a 100,000-image FashionSynth corpus at \
224 px with the same objective; the weights are cached under `FASHIONLAB_DATA` and reused by every experiment.
* **ImageNet.** Where you have the ImageNet files, `--pretrained imagenet` is the papers' own start and the first \
choice; running all three starts (`scratch`, `fashionsynth`, `imagenet`) on the real data answers this notebook's \
question at full size: how much of each paper's result is the ImageNet start.
{GPUS.format(name="NAME")}
{ENV.format(name="NAME", extra="; `FASHIONLAB_PRETRAINED=fashionsynth` or `imagenet` picks the start")}
* **Expect.** None of the papers reports a from-scratch or a self-supervised start, so there is no paper number \
to compare with; the papers' own (ImageNet) numbers are in the closing sections of notebooks 00-06. {NO_TIME}
"""


def _lines(text: str) -> list[str]:
    """Notebook ``source``: a list of lines, each but the last ending in a newline."""
    return text.rstrip("\n").splitlines(keepends=True)


def _cell(text: str, cell_id: str) -> dict:
    return {"cell_type": "markdown", "id": cell_id, "metadata": {"tags": [TAG]}, "source": _lines(text)}


def _is_section(cell: dict) -> bool:
    if cell.get("cell_type") != "markdown":
        return False
    if TAG in (cell.get("metadata") or {}).get("tags", []):
        return True
    src = cell.get("source", "")
    src = "".join(src) if isinstance(src, list) else src
    return src.lstrip().startswith(TITLE)


def apply(path: Path, text: str) -> bool:
    """Put ``text`` in ``path``'s run-for-real cell (replaced in place, else appended); True if the file changed."""
    raw = path.read_text(encoding="utf-8")
    nb = json.loads(raw)
    cells = nb["cells"]
    found = [i for i, c in enumerate(cells) if _is_section(c)]
    if found:
        i = found[0]
        cell = _cell(text, cells[i].get("id", CELL_ID))
        if "id" not in cells[i]:
            del cell["id"]
        cells[i] = cell
        for j in reversed(found[1:]):  # duplicates from an earlier hand edit
            del cells[j]
    else:
        ids = {c.get("id") for c in cells}
        cell = _cell(text, CELL_ID if CELL_ID not in ids else f"{CELL_ID}-{len(cells)}")
        if cells and "id" not in cells[0]:  # nbformat < 4.5 notebooks carry no ids
            del cell["id"]
        cells.append(cell)
    out = json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
    if out == raw:
        return False
    path.write_text(out, encoding="utf-8")
    return True


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    folder = Path(argv[0]) if argv else Path(__file__).resolve().parent.parent / "notebooks"
    if not folder.is_dir():
        print(f"run_for_real: {folder} is not a folder", file=sys.stderr)
        return 2
    missing = [s for s in SECTIONS if not (folder / f"{s}.ipynb").is_file()]
    for stem, text in SECTIONS.items():
        path = folder / f"{stem}.ipynb"
        if path.is_file():
            print(f"{path.name}: {'updated' if apply(path, text) else 'unchanged'}")
    if missing:
        print(f"run_for_real: not found in {folder}: {', '.join(m + '.ipynb' for m in missing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
