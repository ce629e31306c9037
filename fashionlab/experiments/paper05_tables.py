"""Paper 05's numbers (Tables 2 and 3) and the prose notes of the ``m3net`` results file; the recipe is
:mod:`.paper05`."""
from __future__ import annotations

__all__ = ["PAPER_DEEPFASHION_ATTRIBUTES", "PAPER_TABLE2", "PAPER_FASHIONAI_ATTRIBUTES", "PAPER_TABLE3",
           "paper_rows", "config_notes"]

METRICS = ("MAP@all", "MAP@100", "Recall@100")

PAPER_DEEPFASHION_ATTRIBUTES = ["texture", "fabric", "shape", "part", "style"]
#: Table 2 (DeepFashion, multi-label): MAP@all per attribute, MAP@all overall, MAP@100, Recall@100.
PAPER_TABLE2 = {
    "ASEN": [21.03, 11.61, 14.68, 7.81, 4.66, 12.33, 20.60, 5.10],
    "ASEN_v2": [21.86, 11.67, 14.58, 7.93, 4.68, 12.51, 20.55, 4.99],
    "ASEN++": [22.20, 11.71, 14.70, 8.15, 4.72, 12.74, 20.79, 5.21],
    "MODC": [22.26, 11.98, 14.68, 7.96, 5.23, 12.78, 22.21, 6.06],
    "M3-Net_a": [27.37, 18.34, 22.96, 14.66, 9.74, 19.03, 28.14, 10.59],
    "M3-Net_c": [30.09, 19.60, 25.24, 16.43, 11.32, 20.92, 30.58, 12.10],
    "M3-Net": [30.79, 20.20, 27.11, 17.28, 11.61, 21.78, 35.08, 12.88],
}
PAPER_FASHIONAI_ATTRIBUTES = ["skirt_length", "sleeve_length", "coat_length", "pant_length", "collar_design",
                              "lapel_design", "neckline_design", "neck_design"]
#: Table 3 (FashionAI, single-label): the same columns.
PAPER_TABLE3 = {
    "ASEN": [64.61, 49.98, 49.75, 65.76, 70.30, 62.86, 52.14, 56.42, 57.37, 64.70, 22.77],
    "ASEN_v2": [65.58, 54.42, 52.03, 67.41, 71.36, 66.76, 60.91, 59.58, 61.13, 67.85, 24.14],
    "ASEN++": [66.31, 57.51, 55.43, 68.83, 72.79, 66.85, 66.78, 67.02, 64.27, 70.62, 25.30],
    "MODC": [74.54, 67.48, 68.25, 77.69, 81.11, 76.90, 77.46, 77.10, 74.32, 80.29, 30.26],
    "M3-Net_a": [73.21, 69.58, 65.27, 78.79, 80.80, 78.05, 77.04, 73.40, 73.93, 81.57, 30.48],
    "M3-Net_c": [74.33, 65.91, 64.27, 78.26, 82.00, 78.85, 74.80, 72.39, 72.88, 82.58, 30.77],
    "M3-Net": [75.27, 70.04, 67.90, 79.31, 82.82, 78.58, 76.81, 75.51, 75.04, 87.04, 32.01],
}


def paper_rows() -> list[dict]:
    """Tables 2 and 3 as result rows; ``"dataset"`` says which real dataset, ``"table"`` which table."""
    rows = []
    for table, ds, attrs, source in (("Table 2", "DeepFashion (real images, paper 05)", PAPER_DEEPFASHION_ATTRIBUTES,
                                      PAPER_TABLE2),
                                     ("Table 3", "FashionAI (real images, paper 05)", PAPER_FASHIONAI_ATTRIBUTES,
                                      PAPER_TABLE3)):
        for method, v in source.items():
            base = {"method": method, "dataset": ds, "table": table}
            rows += [{**base, "metric": "MAP@all", "attribute": a, "value": x} for a, x in zip(attrs, v)]
            rows += [{**base, "metric": m, "value": x} for m, x in zip(METRICS, v[len(attrs):])]
    return rows


def config_notes(cfg) -> list[str]:
    """The notes of the results file that describe the training setup of ``cfg`` (an ``M3Config``)."""
    fai_epochs = cfg.fai_epochs or cfg.epochs
    fai_triplets = cfg.fai_triplets_per_epoch or cfg.triplets_per_epoch
    return [
        f"every method: SmallCNN width {cfg.width} (output stride {cfg.output_stride}, last ReLU dropped) at "
        f"{cfg.image_size} px, {cfg.epochs} epochs x {cfg.triplets_per_epoch} triplets on the multi-label preset and "
        f"{fai_epochs} x {fai_triplets} on "
        f"FashionAI (batch {cfg.batch}), Adam lr {cfg.lr} (M3-Nets) / {cfg.asen_lr} (ASEN), x {cfg.lr_decay} per epoch, "
        "best validation MAP@all epoch kept",
        f"M3-Nets: zeta {cfg.zeta}, lambda 1, gamma {cfg.gamma}, w_p {cfg.pos_weight} (multi-label) / 1 (FashionAI), "
        f"class prototypes = moving average (momentum {cfg.momentum}) of normalised class-specific representations",
        f"ASEN: ASEN_g of notebook 03 ({cfg.dim}-d), margin {cfg.margin}, ASEN++ triplets of the single-label split",
        f"MAP@{cfg.k}: AP of the top {cfg.k} normalised by min(R, {cfg.k}); Recall@{cfg.k} = relevant in the top "
        f"{cfg.k} / R; relevance = shares a class of the attribute with the query",
    ]
