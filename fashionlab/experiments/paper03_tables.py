"""Paper 03's numbers and the report text of the ``asen`` experiment (:mod:`fashionlab.experiments.paper03` holds
the recipe; this file holds what it prints beside the rows)."""
from __future__ import annotations

__all__ = ["PAPER_DATASET", "PAPER_ATTRIBUTES", "PAPER_FASHIONAI", "PAPER_ABLATION", "paper_rows", "notes"]

PAPER_DATASET = "FashionAI (real images, ASEN slides)"
PAPER_ATTRIBUTES = ["skirt_length", "sleeve_length", "coat_length", "pant_length", "collar_design",
                    "lapel_design", "neckline_design", "neck_design"]
#: The slides' FashionAI table ("Attribute-Specific Fashion Retrieval"): mAP per attribute, overall last.
#: "Triplet network" is named ``Triplet`` here, as our row.
PAPER_FASHIONAI = {
    "Random baseline": [17.20, 12.50, 13.35, 17.45, 22.36, 21.63, 11.09, 21.19, 15.79],
    "Triplet": [48.38, 28.14, 29.82, 54.56, 62.58, 38.31, 26.64, 40.02, 38.52],
    "CSN": [61.97, 45.06, 47.30, 62.85, 69.83, 54.14, 46.56, 54.47, 53.52],
    "ASEN_g": [64.14, 54.62, 51.59, 65.90, 71.45, 66.16, 60.04, 60.28, 60.60],
    "ASEN_l": [50.42, 39.93, 40.85, 51.87, 67.64, 54.38, 50.57, 64.11, 50.34],
    "ASEN": [66.34, 57.53, 55.51, 68.77, 72.94, 66.95, 66.81, 67.01, 64.31],
}
#: The slides' ablation tables ("Study on attention and loss function", "Study on localization strategy"),
#: rows not already in the FashionAI table. (The ablation table repeats ASEN_g with lapel_design 65.16, the
#: FashionAI table has 66.16; ASEN's row is the same in all three tables.)
PAPER_ABLATION = {
    "ASEN_g w/o ASA": [62.09, 46.18, 49.23, 62.79, 67.34, 58.07, 46.85, 56.20, 54.27],
    "ASEN_g w/o ACA": [62.84, 51.46, 49.07, 66.08, 70.36, 61.47, 58.14, 58.02, 58.53],
    "ASEN w/o L_g": [53.73, 13.60, 38.55, 57.07, 22.59, 22.15, 11.44, 21.65, 28.82],
    "ASEN w/o L_l": [65.63, 57.78, 54.82, 68.66, 72.20, 67.10, 66.55, 67.56, 64.08],
    "ASEN w/o L_a": [64.95, 55.96, 53.76, 67.38, 74.12, 66.74, 64.51, 66.48, 63.05],
    "ASEN_full": [66.51, 55.43, 55.37, 67.61, 68.58, 62.30, 59.09, 57.45, 60.81],
}


def paper_rows() -> list[dict]:
    """The slides' FashionAI table, then their ablation rows, as result rows (``"dataset"`` says it is real
    FashionAI; ``"table"`` which slide table the row comes from)."""
    rows = []
    for table, source in (("FashionAI", PAPER_FASHIONAI), ("ablation", PAPER_ABLATION)):
        for method, values in source.items():
            rows += [{"method": method, "metric": "mAP", "attribute": a, "value": v, "dataset": PAPER_DATASET,
                      "table": table} for a, v in zip(PAPER_ATTRIBUTES, values[:-1])]
            rows.append({"method": method, "metric": "mAP", "value": values[-1], "dataset": PAPER_DATASET,
                         "table": table})
    return rows


def notes(cfg, data, histories: dict, attention: dict, study=None) -> list[str]:
    """The report text of the ``asen`` experiment: every size and setting of the run (``cfg``, an
    :class:`~fashionlab.experiments.paper03.AsenConfig`), the best validation epochs, the attention scores' and the
    neck-detail study's definitions."""
    steps = cfg.triplets_per_epoch // cfg.batch
    bb = (f"SmallCNN width {cfg.width} (output stride {cfg.output_stride}"
          f"{'' if cfg.final_relu else ', last ReLU dropped'})" if cfg.backbone == "smallcnn"
          else f"{cfg.backbone} cut after {cfg.stage}")
    lb = (f"SmallCNN width {cfg.local_width or cfg.width}" if (cfg.local_backbone or cfg.backbone) == "smallcnn"
          else f"{cfg.local_backbone or cfg.backbone} cut after {cfg.stage}")
    notes = [
        f"every method: {bb} on the {cfg.global_size} px global view of the {cfg.image_size} px image, "
        f"{cfg.dim}-d L2-normalised embedding, {cfg.epochs} epochs x {cfg.triplets_per_epoch} ASEN++ triplets "
        f"(batch {cfg.batch}, {steps * cfg.epochs} steps; the same triplets in the same order for every method, "
        f"resampled each epoch), margin {cfg.margin} on cosine similarity, Adam lr {cfg.lr} halved every "
        f"{max(1, cfg.epochs // 3)} epochs, best validation-mAP epoch kept",
        f"CSN: CSN's learned masks ({cfg.csn_masks}, N(0.9, 0.7), ReLU) on the pooled {cfg.dim}-d embedding, "
        f"L2-normalised and compared by dot product as the ASEN code's CSN baseline, with CSN's regularisers "
        f"(lambda1 {cfg.lambda1}, lambda2 {cfg.lambda2})",
        f"ASEN_g: ASA (scaled dot product) + ACA (reduction 2), {cfg.cond_dim}-d attribute vectors; w/o ASA = "
        "global average pooling in place of ASA; w/o ACA = no channel gate (the FC kept)",
        f"ASEN (Algorithm 1): stage 1 = ASEN_g; stage 2 = {cfg.stage2_epochs} epochs on the next epochs' "
        f"triplets, loss {cfg.loss_weights[0]} L_g + {cfg.loss_weights[1]} L_l + {cfg.loss_weights[2]} L_a, "
        f"local branch ({lb}, initialised from the stage-1 global branch: {cfg.local_init == 'global'}, sharing "
        f"the attribute table) at lr {cfg.lr * cfg.stage2_lr_local:g}, global branch at "
        f"{cfg.lr * cfg.stage2_lr_global:g}; the local branch embeds a {cfg.local_size} px crop of the "
        f"{cfg.image_size} px image around the global attention (min-max normalised map > {cfg.threshold}, "
        f"bounding box squared); test feature [sqrt(b) g, sqrt(1-b) l] with b = {cfg.mix_beta}; ASEN_l = the "
        "local branch alone; 'ASEN_g after stage 2' = the global branch alone (the control for ASEN's extra "
        "epochs)",
        "mAP: ASEN protocol (docs/protocols.md §4.1), test split, overall weighted by queries; Random baseline: "
        "random unit vectors",
        "paper rows: the slides' FashionAI table ('Triplet' is its 'Triplet network') and ablation tables, on real "
        "FashionAI (ResNet-50 / ResNet-34 ImageNet backbones, 224 px); the ablation table repeats ASEN_g with "
        "lapel_design 65.16 (66.16 in the FashionAI table, used here)",
    ]
    if cfg.whole_image_ablation:
        notes.append("ASEN_full / ASEN_l (whole image): the same stage 2 with the local branch fed the whole "
                     f"{cfg.image_size} px image resized to {cfg.local_size} px instead of the crop (slides "
                     "'Study on localization strategy')")
    if attention:
        n = next(iter(attention.values()))["n"]
        notes.append(f"pointing game / box IoU: on the {n} test items whose listed attribute is visible, against "
                     "FashionSynth's region boxes (ground_truth.jsonl); pointing game = the attention's peak cell "
                     "overlaps the region (ties counted fractionally, so the uniform map of w/o ASA scores "
                     "chance); box IoU = IoU of ASEN++'s squared localisation box with the region (a uniform map "
                     "gives the whole image); overall = mean over items")
    else:
        notes.append("pointing game / box IoU skipped: the data folder has no ground_truth.jsonl (real data)")
    notes.append("best validation epoch: " + ", ".join(f"{m} {h.best_epoch}" for m, h in histories.items()))
    if study is not None:
        sc = study.config
        notes.append(
            f"neck-detail study (beyond the slides): every model trained on the triplets of the four neck "
            f"attributes only (about half of each epoch's {cfg.triplets_per_epoch}) and scored on their test "
            f"queries ('overall' = these four); 'Triplet, oracle crop xS' = the triplet network, {cfg.epochs} "
            f"epochs, on the ground-truth neck region enlarged S times, cut from the {cfg.image_size} px image and "
            f"resized to {cfg.global_size} px; Triplet and ASEN_g on the whole {cfg.global_size} px view for "
            f"{sc.epochs} epochs, then ASEN's stage 2 for {sc.stage2_epochs}; pointing game / box IoU of that "
            "ASEN_g. Best validation epoch: "
            + ", ".join(f"{m} {h.best_epoch}" for m, h in study.histories.items()))

    if data.sampler.skipped:
        notes.append(f"training triplets skip values with too few images: {[str(s) for s in data.sampler.skipped]}")
    return notes
