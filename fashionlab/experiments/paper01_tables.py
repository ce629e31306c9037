"""Paper 01's numbers and the report text of the ``recognition`` and ``retrieval`` experiments
(:mod:`fashionlab.experiments.paper01` holds the recipe; this file holds what it prints beside the rows)."""
from __future__ import annotations

PAPER_DATASET = "FashionAI (paper 01)"


def paper_rows(experiment: str) -> list[dict]:
    """The numbers of paper 01 that appear in its text, with ``"dataset": "FashionAI (paper 01)"``.

    Fig. 4 (recognition) is a bar chart whose values are not in the text: none. Table II's values are not in the
    text either, except SiaNet's validation triplet accuracy, 0.604 (section "Experimental Model Results")."""
    if experiment == "retrieval":
        return [{"method": "SiaNet", "metric": "triplet accuracy", "value": 60.4, "dataset": PAPER_DATASET}]
    return []


def common_notes(cfg, data, methods, histories) -> list[str]:
    """The training setup shared by both experiments, and each method's best validation epoch."""
    steps = cfg.triplets_per_epoch // cfg.batch * cfg.epochs
    notes = [f"SmallCNN width {cfg.width} at {cfg.input_size} px, embedding {cfg.dim}, {cfg.epochs} epochs x "
             f"{cfg.triplets_per_epoch} triplets (batch {cfg.batch}, {steps} steps, the same triplets in the same "
             f"order for every method: paper 01's pool rebuilt each epoch), Adam lr {cfg.lr} halved every "
             f"{max(1, cfg.epochs // 3)} epochs; margin h {cfg.margin}, alpha {cfg.alpha}, beta {cfg.beta}, "
             f"lambda1 {cfg.lambda1}, lambda2 {cfg.lambda2}, learned masks N(0.9, 0.7) (modified CSN)"]
    notes.append("best validation epoch: " + ", ".join(f"{m} {histories[m].best_epoch}" for m in methods))
    if data.sampler.skipped:
        notes.append(f"training triplets skip values with too few images: {[str(s) for s in data.sampler.skipped]}")
    return notes


def recognition_notes(have_truth: bool) -> list[str]:
    """What the ``recognition`` rows mean (paper 01 Fig. 4, and Fig. 5 scored where ground truth exists)."""
    notes = ["accuracy = top-1 within the annotated dimension (argmax over that dimension's values: its column's "
             "softmax for MC, its block of the single softmax for SC), on the test split's annotated items "
             "(queries + candidates); overall = unweighted mean of the 8 dimensions",
             "SC/MC: cross-entropy only; -Rec+Ret: alpha*CE + beta*triplet (Eq. 6) on one 64-d embedding with the "
             "modified CSN (learned masks) as the retrieval part; all four see the same triplets' images (CE on "
             "anchor, positive and negative, each annotated under the triplet's dimension); epoch selected on "
             "validation accuracy"]
    if have_truth:
        notes.append("accuracy (unannotated dims): every test image's prediction on each dimension it was NOT "
                     "annotated with, scored against FashionSynth's full ground truth (ground_truth.jsonl; the "
                     "true value there is mostly Invisible, value 0, which is rare among the annotated training "
                     "labels); overall = mean over dimensions; '(unannotated dims, visible)': the same restricted to "
                     "dimensions whose true value is not Invisible (what paper 01 Fig. 5 shows: it hides Invisible)")
    else:
        notes.append("accuracy (unannotated dims) skipped: the data folder has no ground_truth.jsonl "
                     "(real data: only the annotated dimension is known)")
    notes.append("paper 01 Fig. 4 gives its accuracies only as a bar chart (no numbers in the text): no paper rows")
    return notes


def retrieval_notes(num_test_triplets: int) -> list[str]:
    """What the ``retrieval`` rows mean (paper 01 Table II) and how each baseline is built."""
    return [f"triplet accuracy: {num_test_triplets} fixed test triplets (paper 01's pool over the test "
            "split's annotated items, seed 0), correct when s(anchor, positive) > s(anchor, negative) under the "
            "method's own (conditioned) unit-norm embedding; overall over all triplets",
            "R@k: hit rate (a relevant candidate among the top k of the query's dimension), averaged over "
            "dimensions; mAP: ASEN protocol, overall weighted by queries",
            "SiaNet: contrastive loss (margin 1.0, L2-normalised embeddings) on positive pairs (anchor, positive) "
            "and negative pairs (anchor, negative) of the same triplets; TriNet: attribute-unaware triplet ranking "
            "loss on cosine similarity, margin 0.3; paper 01's text describes a SiaNet on positive pairs only "
            "(Paper01Config.sianet_pairs='positive', trained in notebook 02 section 4)",
            "Att-TriNet: 8 SmallCNN networks of the same width, one per dimension; each step's triplets are routed "
            "to their dimension's network, so the 8 share the step budget (the same images per step as every "
            "other method; each network sees about 1/8 of them); at test time an image is embedded by the network "
            "of its dimension. +Reg: each network also has a multi-column head, alpha*CE + beta*triplet",
            "CSN: paper 01's modified CSN (learned masks, L1-normalised, masked embedding L2-normalised, inner "
            "product) with lambda1/lambda2; MTL Ret+Reg: the same plus the multi-column head, Eq. 6",
            "epoch selected on validation triplet accuracy (docs/protocols.md §4.2)",
            "paper 01 gives Table II's numbers only in the table; the text states SiaNet's validation accuracy "
            "0.604 (the paper row); MTL Ret+Reg is said to be 'nearly 4%' above CSN"]
