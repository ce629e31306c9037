"""Paper 01 investigations too slow for notebooks 01-02 (default mode, about 15 minutes on a 2-core CPU).

    python scripts/ablate_paper01.py rec    # why joint training costs recognition accuracy (notebook 01, section 5)
    python scripts/ablate_paper01.py ret    # SiaNet vs TriNet: seeds, and SiaNet on positive pairs only (notebook 02)

Each line printed is one trained variant, as JSON: method, the Paper01Config fields changed, seed, the test
score (recognition ``accuracy`` or retrieval ``triplet accuracy``, percent), best epoch and seconds. Each variant
is kept in the trained-model cache: a second run of the script loads it instead of training.
"""
import json
import sys
import time

from fashionlab.experiments import paper01

PLANS = {
    # (the swapped weights alpha 0.7, beta 0.3 and SiaNet on positive pairs only run inside notebooks 01 and 02)
    "rec": [("MC-Rec+Ret", {"lambda1": 0.0, "lambda2": 0.0}, 0), ("MC", {"epochs": 24}, 0),
            ("MC-Rec+Ret", {"epochs": 24}, 0)],
    "ret": [("SiaNet", {}, 1), ("TriNet", {}, 1), ("SiaNet", {}, 2), ("TriNet", {}, 2)],
}


def main(which: str, mode: str = "default") -> None:
    data = paper01.load_data(paper01.PAPER01_CONFIGS[mode], mode, seed=0)
    for method, changes, seed in PLANS[which]:
        t = time.time()
        r = paper01.train_variant(method, data, seed=seed, **changes)
        score = {k: r[k] for k in ("accuracy", "triplet accuracy") if k in r}
        print(json.dumps({"method": method, "changes": changes, "seed": seed, **score, "best_epoch": r["best_epoch"],
                          "seconds": round(time.time() - t)}), flush=True)


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in PLANS:
        sys.exit(f"usage: python scripts/ablate_paper01.py {{{'|'.join(PLANS)}}} [mode]")
    main(sys.argv[1], *sys.argv[2:3])
