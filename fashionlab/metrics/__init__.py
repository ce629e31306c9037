"""Evaluation metrics shared by the notebooks and experiments, one module per task (``docs/architecture.md``,
section "Evaluation"; the protocols: ``docs/protocols.md``).

* :mod:`~fashionlab.metrics.retrieval`: attribute-specific mAP and recall@k (ASEN protocol, docs/protocols.md
  §4.1) with the teaching loops :func:`attribute_map_reference` / :func:`attribute_ap_reference` and
  :func:`average_precision`; :func:`triplet_accuracy` (CSN protocol, docs/protocols.md §4.2); multi-label
  retrieval from a score matrix (paper 05, M3-Net, sections 4.2-4.3: :func:`multilabel_relevance`,
  :func:`ranking_stats`, :func:`retrieval_summary`, :func:`ranking_stats_reference`).
* :mod:`~fashionlab.metrics.classification`: :func:`topk_accuracy`; DeepFashion attribute recall@k
  (docs/protocols.md §4.3; paper 06 §4.2, Table 7) with its loop; :func:`hierarchy_violations`.
* :mod:`~fashionlab.metrics.detection`: the one :func:`box_iou` (pairwise, or row-wise with ``paired=True``),
  :func:`match_detections`, :func:`coco_detection_metrics` (paper 06 §4.2, Table 4).
* :mod:`~fashionlab.metrics.imbalance`: IR, MeanIR and SCUMBLE (paper 06 §4.1, Eq. 8-10). Balancing a dataset
  by down-sampling is a data operation: :func:`fashionlab.datasets.balance_by_downsampling`.

Every public name is re-exported here: ``from fashionlab.metrics import attribute_map`` and
``fashionlab.metrics.attribute_map`` work. Private tuning constants (e.g. the chunk sizes) live in, and are
read from, their own module (:mod:`~fashionlab.metrics.retrieval`).
"""
from __future__ import annotations

from .classification import (
    attribute_recall_at_k,
    attribute_recall_at_k_reference,
    hierarchy_violations,
    topk_accuracy,
)
from .detection import box_iou, coco_detection_metrics, match_detections
from .imbalance import imbalance_ratios, mean_imbalance_ratio, scumble
from .retrieval import (
    attribute_ap_reference,
    attribute_map,
    attribute_map_reference,
    attribute_retrieval_stats,
    average_precision,
    expected_random_ap,
    multilabel_relevance,
    ranking_stats,
    ranking_stats_reference,
    recall_at_k,
    retrieval_summary,
    triplet_accuracy,
)

__all__ = [
    "attribute_map",
    "attribute_retrieval_stats",
    "attribute_map_reference",
    "attribute_ap_reference",
    "average_precision",
    "expected_random_ap",
    "recall_at_k",
    "triplet_accuracy",
    "topk_accuracy",
    "multilabel_relevance",
    "ranking_stats",
    "retrieval_summary",
    "ranking_stats_reference",
    "imbalance_ratios",
    "mean_imbalance_ratio",
    "scumble",
    "attribute_recall_at_k",
    "attribute_recall_at_k_reference",
    "hierarchy_violations",
    "box_iou",
    "match_detections",
    "coco_detection_metrics",
]
