"""Datasets: readers for the real annotation formats, torch Datasets and triplet samplers.

* :mod:`~fashionlab.datasets.readers`: ASEN split files and ``meta.json`` (docs/formats.md §5.1), FashionAI
  ``label.csv`` (§5.2), ADDE split files with one-hot labels (§5.6: Shopping100k, FashionSynth's shop dataset of
  paper 04). Clear errors (file and line) instead of ``None``.
* :mod:`~fashionlab.datasets.detection`: detection annotations for paper 06's stage 1: COCO detection JSON (with
  FashionSynth's garment-category and attribute extensions) and DeepFashion2's per-image JSON (§5.4), read into
  a :class:`DetectionDataset`; :func:`to_coco` writes one back for ``pycocotools``.
* :mod:`~fashionlab.datasets.images`: :class:`AttributeImageDataset`, :class:`TripletDataset`,
  :func:`make_transform`, :class:`TensorImages` and :class:`TwoScaleImages` (a split decoded once into memory).
* :mod:`~fashionlab.datasets.streaming`: their streaming counterparts, decoded batch by batch in ``DataLoader``
  workers, :class:`StreamingArray` (a streamed plain image array: paper 06's scenes and crops), and
  :func:`image_source` / :func:`image_array`, which choose between the two (streaming for real data and ``full``
  mode).
* :mod:`~fashionlab.datasets.samplers`: ASEN v1 and ASEN++ triplet samplers (docs/implementations.md §2, §3) and
  paper 01's fixed triplet pool; triplets are image ids ``(anchor, positive, negative, attribute)``.
"""
from .balance import balance_by_downsampling
from .deepfashion import (
    CATEGORY_TYPE_NAMES,
    DEEPFASHION_SPLITS,
    TYPE_NAMES,
    DeepFashionAttributes,
    read_asen_deepfashion_labels,
    read_attr_cloth,
    read_attr_img,
    read_bbox,
    read_category_cloth,
    read_category_img,
    read_deepfashion,
    read_eval_partition,
    type_ranks,
)
from .detection import (
    DF2_CATEGORIES,
    DF2_OBJECT_TYPES,
    OBJECT_TYPES,
    DetectionDataset,
    read_coco_detection,
    read_deepfashion2,
    to_coco,
)
from .images import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    AttributeImageDataset,
    ImageLoadError,
    TensorImages,
    TripletDataset,
    TwoScaleImages,
    load_resized,
    load_rgb,
    make_transform,
)
from .streaming import (
    StreamingArray,
    StreamingCrops,
    StreamingImages,
    StreamingTwoScaleImages,
    default_workers,
    image_array,
    image_source,
    prefetched,
    stream_default,
    take_rows,
    triplet_ids,
)
from .readers import (
    ADDE_SPLITS,
    SPLITS,
    AddeSplit,
    AsenSplit,
    DataFormatError,
    DegenerateEvaluationWarning,
    FashionAILabels,
    find_meta,
    indices_to_onehot,
    onehot_to_indices,
    read_adde_split,
    read_asen_split,
    read_attr_num,
    read_fashionai_labels,
    read_filenames,
    read_id_list,
    read_items,
    read_label_file,
    read_lines,
    read_meta,
    read_onehot_labels,
)
from .samplers import (
    AsenPPTripletSampler,
    AsenV1TripletSampler,
    ClassTripletSampler,
    LabelIndex,
    Paper01TripletPool,
    RareValueError,
    SkippedValue,
    check_triplets,
)

__all__ = [
    "SPLITS", "AsenSplit", "DataFormatError", "DegenerateEvaluationWarning", "FashionAILabels", "find_meta", "read_asen_split",
    "read_fashionai_labels", "read_filenames", "read_items", "read_label_file", "read_lines", "read_meta",
    "ADDE_SPLITS", "AddeSplit", "read_adde_split", "read_attr_num", "read_onehot_labels", "read_id_list",
    "onehot_to_indices", "indices_to_onehot",
    "IMAGENET_MEAN", "IMAGENET_STD", "AttributeImageDataset", "ImageLoadError", "TensorImages", "TripletDataset", "TwoScaleImages", "load_rgb",
    "StreamingImages", "StreamingTwoScaleImages", "StreamingArray", "StreamingCrops", "image_source", "image_array",
    "prefetched", "take_rows", "stream_default", "default_workers", "triplet_ids", "load_resized",
    "make_transform",
    "AsenPPTripletSampler", "AsenV1TripletSampler", "ClassTripletSampler", "LabelIndex", "Paper01TripletPool", "RareValueError",
    "SkippedValue", "check_triplets",
    "TYPE_NAMES", "CATEGORY_TYPE_NAMES", "DEEPFASHION_SPLITS", "DeepFashionAttributes", "read_deepfashion",
    "read_attr_cloth", "read_attr_img", "read_category_cloth", "read_category_img", "read_bbox", "read_eval_partition",
    "read_asen_deepfashion_labels", "type_ranks",
    "OBJECT_TYPES", "DF2_CATEGORIES", "DF2_OBJECT_TYPES", "DetectionDataset", "read_coco_detection",
    "read_deepfashion2", "to_coco",
]
