"""Benchmark: vectorised attribute-specific mAP vs the per-query teaching loop (ASEN protocol, docs/protocols.md §4.1).

Sizes of the FashionAI test split: 3,600 queries and 14,400 candidates over 8 attributes. The attribute and
value columns come from the real split files when ``shared_realdata()`` finds them, else they are synthetic
with the same per-attribute query counts (422/623/535/422/341/289/703/265), 4x as many candidates, and
values drawn uniformly from each attribute's value count. Embeddings are random unit vectors.

    python benchmarks/bench_map.py [--dim 64] [--dtype float64] [--repeats 5] [--threads N] [--synthetic]

Prints the best-of-``repeats`` wall time of ``attribute_map`` (CPU with torch's default thread count and with
one thread, both sorting backends; CUDA too when available) and of ``attribute_map_reference``, their ratio,
and the largest difference between the results. Not a test.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

import numpy as np  # noqa: E402
import torch  # noqa: E402

from fashionlab import metrics as M  # noqa: E402
from fashionlab.config import shared_realdata  # noqa: E402

QUERY_COUNTS = [422, 623, 535, 422, 341, 289, 703, 265]
VALUE_COUNTS = [6, 9, 8, 6, 5, 5, 10, 5]


def _read_split(path: Path):
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]  # CRLF-safe
    arr = np.array(rows, dtype=np.int64)
    return arr[:, 1], arr[:, 2]


def labels(rng, synthetic: bool):
    root = shared_realdata()
    folder = root / "zhengguorong_asenpp" / "data" / "FashionAI" if root is not None else None
    if not synthetic and folder is not None and (folder / "query_test.txt").exists():
        q_attr, q_val = _read_split(folder / "query_test.txt")
        c_attr, c_val = _read_split(folder / "candidate_test.txt")
        return "real FashionAI test split", q_attr, q_val, c_attr, c_val
    q_attr = np.concatenate([np.full(n, a) for a, n in enumerate(QUERY_COUNTS)])
    c_attr = np.concatenate([np.full(4 * n, a) for a, n in enumerate(QUERY_COUNTS)])
    rng.shuffle(q_attr)
    rng.shuffle(c_attr)
    q_val = np.array([rng.integers(VALUE_COUNTS[a]) for a in q_attr])
    c_val = np.array([rng.integers(VALUE_COUNTS[a]) for a in c_attr])
    return "synthetic (FashionAI-test counts)", q_attr, q_val, c_attr, c_val


def best_time(fn, repeats):
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return min(times), float(np.median(times)), result


def max_diff(a, b):
    return max(abs(a[k] - b[k]) for k in b)


def print_row(name, t, med, res, t_ref, ref):
    print(f"{name:44s}: {t * 1e3:8.1f} ms  (median {med * 1e3:.1f})  {t_ref / t:6.1f}x faster; "
          f"max |difference| {max_diff(res, ref):.1e}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--ref-repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads for the first set of runs (default: torch's choice); 1 thread follows")
    p.add_argument("--synthetic", action="store_true", help="synthetic labels even when the real split exists")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    rng = np.random.default_rng(0)
    source, q_attr, q_val, c_attr, c_val = labels(rng, args.synthetic)
    q_emb = rng.standard_normal((len(q_attr), args.dim))
    c_emb = rng.standard_normal((len(c_attr), args.dim))
    q_emb = (q_emb / np.linalg.norm(q_emb, axis=1, keepdims=True)).astype(args.dtype)
    c_emb = (c_emb / np.linalg.norm(c_emb, axis=1, keepdims=True)).astype(args.dtype)
    pairs = sum(int((q_attr == a).sum()) * int((c_attr == a).sum()) for a in np.unique(q_attr))
    print(f"data: {source}: {len(q_attr)} queries, {len(c_attr)} candidates, {len(np.unique(q_attr))} attributes, "
          f"{pairs:,} query-candidate pairs ranked; dim {args.dim}, {args.dtype}")
    print(f"{os.cpu_count()} CPUs; best of {args.repeats} runs (vectorised) / {args.ref_repeats} (reference)")

    args_ = (q_emb, q_attr, q_val, c_emb, c_attr, c_val)
    t_ref, med_ref, ref = best_time(lambda: M.attribute_map_reference(*args_), args.ref_repeats)
    print(f"{'reference loop (numpy + Python)':44s}: {t_ref * 1e3:8.1f} ms  (median {med_ref * 1e3:.1f})")
    rows = []
    # torch's default thread count, then 1 thread: the reference is single-threaded, and on a shared machine
    # idle OpenMP threads spinning next to other processes can make the multi-threaded figure erratic
    for threads in dict.fromkeys([torch.get_num_threads(), 1]):
        torch.set_num_threads(threads)
        for sort in ("packed", "torch"):
            M.attribute_map(*args_, sort=sort)  # warm-up
            t, med, res = best_time(lambda: M.attribute_map(*args_, sort=sort), args.repeats)
            rows.append((f"vectorised CPU, sort={sort!r}, {threads} thread(s)", t, med, res))
            print_row(*rows[-1], t_ref, ref)
    if torch.cuda.is_available():
        cuda_args = [torch.as_tensor(np.asarray(x)).cuda() for x in args_]
        M.attribute_map(*cuda_args)
        t, med, res = best_time(lambda: M.attribute_map(*cuda_args), args.repeats)
        rows.append((f"vectorised CUDA ({torch.cuda.get_device_name()})", t, med, res))
        print_row(*rows[-1], t_ref, ref)
    best_cpu = min(t for name, t, _, _ in rows if "'packed'" in name)
    print(f"default CPU path (sort='auto' = 'packed'): {t_ref / best_cpu:.1f}x faster than the reference "
          f"(target: at least 20x)")
    print(f"load average during the run: {', '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"(other processes on the same cores slow the timings down)")
    print("mAP (%):", ", ".join(f"{k}: {100 * v:.2f}" for k, v in ref.items()))
    print(f"mAPs (overall + per attribute) agree with the reference to "
          f"{max(max_diff(res, ref) for _, _, _, res in rows):.1e}")
    ref_ap = M.attribute_ap_reference(*args_)
    for sort in ("packed", "torch"):
        ap = M.attribute_retrieval_stats(*args_, sort=sort)["ap"].numpy()
        diff = np.abs(ap - ref_ap).max()
        print(f"per-query AP, sort={sort!r}: " + ("bit-identical to the reference" if diff == 0 else
                                                 f"equal to the reference to {diff:.1e}"))
    if torch.cuda.is_available():
        ap = M.attribute_retrieval_stats(*cuda_args)["ap"].cpu().numpy()
        print(f"per-query AP, CUDA: max |difference| {np.abs(ap - ref_ap).max():.1e}")

if __name__ == "__main__":
    main()
