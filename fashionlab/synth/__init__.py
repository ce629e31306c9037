"""FashionSynth: fashionlab's procedural garment renderer with exact ground truth (docs/architecture.md,
"FashionSynth").

FashionSynth is our own generator, not taken from a paper.

* :mod:`~fashionlab.synth.geometry`: the garment geometry in body units (mannequin, outlines, neck details,
  whole garments); :mod:`~fashionlab.synth.patterns`: colours, fabric patterns, clutter and noise.
* :mod:`~fashionlab.synth.garments` builds and renders single garments (:func:`sample_garment`,
  :func:`set_value`, :func:`render`, :class:`RenderConfig`, ``PRESETS``); :mod:`~fashionlab.synth.preview` draws
  grids with one column per attribute value.
* :mod:`~fashionlab.synth.writer` is the shared writer of the datasets: a preset interface (plan, render one
  item, write the split files) and one flow for folder, render loop, ground truth and cache
  (:func:`~fashionlab.synth.writer.generate`, :func:`~fashionlab.synth.writer.ensure`);
  :mod:`~fashionlab.synth.cli` the ``fashionlab synth <preset>`` commands.
* The presets, each writing a real dataset's formats with a full ground-truth file beside them:
  :mod:`~fashionlab.synth.fashionai` (FashionAI / ASEN, docs/formats.md §5.1, §5.2: :func:`generate_fashionai`,
  :func:`ensure_fashionai`, :func:`load_ground_truth`); :mod:`~fashionlab.synth.shop` (paper 04's
  Shopping100k stand-in: single clean garments with general and special attributes and part boxes, in the ADDE
  layout of docs/formats.md §5.6: :func:`generate_shop`, :func:`ensure_shop`, :func:`load_shop_ground_truth`);
  :mod:`~fashionlab.synth.multilabel` (paper 05's DeepFashion stand-in: :func:`generate_multilabel`,
  :func:`ensure_multilabel`, :func:`load_multilabel_ground_truth`); :mod:`~fashionlab.synth.outfit` (paper 06's
  outfit scenes: one mannequin in 2-4 garments, a box per object, object types / categories / attributes, in
  the DeepFashion2 and COCO detection formats with square stage-2 crops in the DeepFashion list files:
  :func:`generate_outfits`, :func:`ensure_outfits`, :func:`load_outfit_ground_truth`, :func:`render_outfit`,
  :func:`sample_outfit`, :func:`square_crop`, :func:`applicable_mask`).
"""
from __future__ import annotations

from .fashionai import (VERSION, ensure_fashionai, generate_fashionai, load_ground_truth, main_fashionai,
                        plan_splits)
from .garments import (ATTRIBUTES, BODY_TYPE, CATEGORIES, CATEGORY_ATTRIBUTES, NECK_FAMILIES, PRESETS,
                       GarmentSpec, RenderConfig, allowed_values, applicable_categories, render, sample_garment,
                       set_value)
from .shop import SHOP_CONFIG, SHOP_SCHEMA, ensure_shop, generate_shop, load_shop_ground_truth, main_shop, render_shop
from .outfit import (OUTFIT_CONFIG, applicable_mask, ensure_outfits, generate_outfits, load_outfit_ground_truth,
                     main_outfit, render_outfit, sample_outfit, square_crop)
from .multilabel import (MULTILABEL_CONFIG, MULTILABEL_SCHEMA, ensure_multilabel, generate_multilabel,
                         load_multilabel_ground_truth, main_multilabel, render_multilabel)

__all__ = [
    "ATTRIBUTES", "BODY_TYPE", "CATEGORIES", "CATEGORY_ATTRIBUTES", "NECK_FAMILIES", "PRESETS", "VERSION",
    "GarmentSpec", "RenderConfig", "allowed_values", "applicable_categories", "ensure_fashionai",
    "generate_fashionai", "load_ground_truth", "main_fashionai", "plan_splits", "render", "sample_garment",
    "set_value", "SHOP_CONFIG", "SHOP_SCHEMA", "ensure_shop", "generate_shop", "load_shop_ground_truth", "main_shop",
    "render_shop", "MULTILABEL_CONFIG", "MULTILABEL_SCHEMA", "ensure_multilabel", "generate_multilabel",
    "load_multilabel_ground_truth", "main_multilabel", "render_multilabel", "OUTFIT_CONFIG", "applicable_mask",
    "ensure_outfits", "generate_outfits", "load_outfit_ground_truth", "main_outfit", "render_outfit",
    "sample_outfit", "square_crop",
]
