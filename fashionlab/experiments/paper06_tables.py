"""Paper 06's own numbers (Tables 4-7), kept apart from the recipe in :mod:`fashionlab.experiments.paper06`.

Values are percentages as printed in the paper (``06_hierarchical_label_sharing.txt``); :func:`paper_rows` turns
them into result rows whose ``"dataset"`` names the real dataset and ``"table"`` the table.
"""
from __future__ import annotations

__all__ = ["PAPER_TABLE4", "PAPER_TABLE5", "PAPER_TABLE6", "PAPER_TABLE7", "paper_rows"]

PAPER_TABLE4 = {  # Faster R-CNN column: (training, evaluation) -> (mAP, AR@100)
    ("DF2", "DF2"): (73.0, 83.7), ("DF2", "Mallzee"): (73.9, 84.2), ("Mallzee", "Mallzee"): (80.6, 85.8),
}
PAPER_TABLE5 = {  # EfficientNet-B4, Accuracy@1
    "Full-body only": 94.90, "Lower-body only": 94.44, "Footwear only": 93.86, "Upper-body only": 88.15,
    "Full dataset": 92.24,
}
PAPER_TABLE6 = {  # Mallzee: category top-1/3/5, attributes top-1/3/5
    "Baseline STL": (90.10, 98.55, 99.48, 78.75, 94.32, 96.78),
    "STL w/ HLS": (90.67, 98.72, 99.53, 77.62, 93.70, 96.80),
    "MTL w/ RNN+VA": (87.63, 98.01, 99.31, 62.74, 83.81, 90.32),
}
PAPER_TABLE7 = {  # DeepFashion: category top-3/5, attributes recall@3/5 (altered in parentheses)
    "Baseline STL": (93.71, 97.40, 34.71, 43.90, 65.79, 73.57),
    "STL w/ HLS": (93.99, 97.49, 36.20, 45.62, 66.19, 73.73),
    "MTL w/ RNN+VA": (93.72, 97.57, 26.85, 35.22, 53.01, 66.4),
}


def paper_rows() -> list[dict]:
    """Tables 4-7 of the paper as result rows (percent); ``"dataset"`` names the real dataset, ``"table"`` the
    table."""
    rows = []
    for (train, ev), (m, ar) in PAPER_TABLE4.items():
        ds = f"{ev} (trained on {train}, paper 06)"
        rows += [{"method": "Faster R-CNN", "dataset": ds, "table": "Table 4", "metric": "mAP", "value": m},
                 {"method": "Faster R-CNN", "dataset": ds, "table": "Table 4", "metric": "AR@100", "value": ar}]
    for what, v in PAPER_TABLE5.items():
        method = "one model for all categories" if what == "Full dataset" else "one model per object type"
        rows.append({"method": method, "dataset": "Mallzee (paper 06)", "table": "Table 5", "metric": "top-1 category",
                     "attribute": what, "value": v})
    names6 = ("top-1 category", "top-3 category", "top-5 category", "recall@1 attributes", "recall@3 attributes",
              "recall@5 attributes")
    for method, v in PAPER_TABLE6.items():
        rows += [{"method": method, "dataset": "Mallzee (paper 06)", "table": "Table 6", "metric": n, "value": x}
                 for n, x in zip(names6, v)]
    names7 = ("top-3 category", "top-5 category", "recall@3 attributes", "recall@5 attributes",
              "altered recall@3 attributes", "altered recall@5 attributes")
    for method, v in PAPER_TABLE7.items():
        rows += [{"method": method, "dataset": "DeepFashion (paper 06)", "table": "Table 7", "metric": n, "value": x}
                 for n, x in zip(names7, v)]
    return rows
