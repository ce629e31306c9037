"""Data-parallel training and evaluation on many processes: ``torchrun --nproc_per_node=N -m fashionlab ...``.

docs/distributed.md tells the whole story; in short:

* **Start.** Under ``torchrun`` (the environment holds ``WORLD_SIZE`` > 1) :func:`init_from_env` joins the
  process group: NCCL when CUDA is there (each process on the GPU ``LOCAL_RANK``), gloo on CPU. The command line
  calls it; nothing changes for a single process, where every function here is a cheap no-op.
* **The samplers shard their draws by rank without knowing it.** :func:`fashionlab.engine.fit` reseeds every
  RNG from ``(seed, epoch)`` before it calls ``make_batches(epoch)``, so every rank draws *the same global
  batches* (the same triplets, the same class-balanced draws) and :func:`shard` cuts each global batch into
  ``world_size`` contiguous, equal-sized slices, of which a rank trains on its own. The union of the slices is
  the 1-process batch, in its order; no sampler needs a rank argument.
* **Gradients.** After ``backward`` each rank's gradients are weighted by its share of the global batch
  (``n_rank / n_global``) and summed over the ranks with one all-reduce (:func:`reduce_gradients`). For a loss
  that is a mean over the batch's items this is exactly the gradient of the 1-process loss, whatever the step
  function calls (``model(x)``, ``model.loss(...)``, a submodule): ``DistributedDataParallel`` hooks only
  ``model.forward`` and would miss the recipes' ``model.loss(...)`` calls.
* **Evaluation.** :func:`fashionlab.engine.extract_features` embeds each rank's shard of every batch and
  gathers the shards back into the original order (:func:`all_gather_cat`), so every rank holds all features
  and computes the same metrics as one process.
* **Rank 0 writes.** Results, checkpoints, the trained-model cache and the log lines come from rank 0 only
  (:func:`is_main`); the other ranks wait at a :func:`barrier` where they need rank 0's files.
"""
from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

__all__ = [
    "init_from_env",
    "is_initialized",
    "rank",
    "local_rank",
    "world_size",
    "is_main",
    "shard",
    "shard_bounds",
    "batch_length",
    "all_gather_cat",
    "all_reduce_sum",
    "reduce_gradients",
    "average_buffers",
    "broadcast_module",
    "broadcast_object",
    "sync_batchnorm",
    "barrier",
    "main_first",
    "cleanup",
]


# ----------------------------------------------------------------------------------------------------------
# the process group
# ----------------------------------------------------------------------------------------------------------
def _dist():
    import torch.distributed as dist

    return dist


def is_initialized() -> bool:
    """Whether a process group is up (``torch.distributed`` available and initialised)."""
    dist = _dist()
    return dist.is_available() and dist.is_initialized()


def init_from_env(backend: str | None = None, timeout_s: float = 1800.0) -> bool:
    """Join the process group that ``torchrun`` describes in the environment (``RANK``, ``WORLD_SIZE``,
    ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``); returns whether this is a multi-process run.

    With ``WORLD_SIZE`` unset or 1 nothing happens (``False``). Else the group is initialised once (a second call
    returns ``True``): ``backend`` defaults to ``"nccl"`` when CUDA is available and ``"gloo"`` otherwise
    (``FASHIONLAB_DIST_BACKEND`` overrides it), and on CUDA the process's default device becomes
    ``cuda:LOCAL_RANK`` (so :func:`fashionlab.engine.device` picks it).
    """
    if int(os.environ.get("WORLD_SIZE", "1") or 1) <= 1:
        return False
    if is_initialized():
        return True
    dist = _dist()
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    backend = backend or os.environ.get("FASHIONLAB_DIST_BACKEND") or ("nccl" if torch.cuda.is_available() else "gloo")
    if backend == "nccl" or torch.cuda.is_available():
        lr = local_rank()
        if torch.cuda.is_available():
            if lr >= torch.cuda.device_count():
                raise RuntimeError(f"LOCAL_RANK {lr} but only {torch.cuda.device_count()} CUDA device(s) on this node: "
                                   "start at most that many processes per node (--nproc_per_node)")
            torch.cuda.set_device(lr)
    dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=timeout_s))
    return True


def rank() -> int:
    """This process's global rank (0 without a process group)."""
    return _dist().get_rank() if is_initialized() else 0


def local_rank() -> int:
    """This process's rank on its node (``LOCAL_RANK`` from torchrun; 0 without it)."""
    return int(os.environ.get("LOCAL_RANK", "0") or 0)


def world_size() -> int:
    """The number of processes (1 without a process group)."""
    return _dist().get_world_size() if is_initialized() else 1


def is_main() -> bool:
    """Whether this process writes results, checkpoints and logs: rank 0, or any single process."""
    return rank() == 0


def barrier() -> None:
    """Wait until every rank gets here (nothing without a process group)."""
    if world_size() > 1:
        _dist().barrier()


@contextlib.contextmanager
def main_first():
    """Run the block on rank 0 first, then on the other ranks: rank 0 builds a cache (a rendered dataset, a
    download) that the others then find. Without a process group the block simply runs."""
    many = world_size() > 1
    if many and not is_main():
        barrier()
    try:
        yield
    finally:
        if many and is_main():
            barrier()


def cleanup() -> None:
    """Leave the process group (``destroy_process_group``) if one is up; safe to call twice."""
    if is_initialized():
        with contextlib.suppress(Exception):
            _dist().destroy_process_group()


def _comm_device(t: torch.Tensor | None = None) -> torch.device:
    """Where collective buffers live: the current CUDA device for NCCL, else the CPU (gloo)."""
    if is_initialized() and _dist().get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


# ----------------------------------------------------------------------------------------------------------
# sharding a global batch
# ----------------------------------------------------------------------------------------------------------
def _is_rows(x: Any) -> bool:
    return isinstance(x, (torch.Tensor, np.ndarray)) and x.ndim >= 1


def batch_length(batch: Any) -> int | None:
    """The number of items in a batch: the first dimension of its first tensor or array (searched through
    tuples, lists and dicts); ``None`` when it holds none."""
    if _is_rows(batch):
        return int(batch.shape[0])
    if isinstance(batch, Mapping):
        batch = list(batch.values())
    if isinstance(batch, (tuple, list)):
        for v in batch:
            n = batch_length(v)
            if n is not None:
                return n
    return None


def shard_bounds(n: int, world: int | None = None, r: int | None = None) -> tuple[int, int]:
    """``(start, stop)`` of rank ``r``'s contiguous slice of ``n`` items: ``n // world`` items each, the first
    ``n % world`` ranks one more (equal slices when ``world`` divides ``n``)."""
    world = world_size() if world is None else world
    r = rank() if r is None else r
    base, extra = divmod(int(n), world)
    start = r * base + min(r, extra)
    return start, start + base + (1 if r < extra else 0)


def _slice(batch: Any, n: int, lo: int, hi: int) -> Any:
    if _is_rows(batch):
        return batch[lo:hi] if batch.shape[0] == n else batch
    if isinstance(batch, Mapping):
        return {k: _slice(v, n, lo, hi) for k, v in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # namedtuple
        return type(batch)(*(_slice(v, n, lo, hi) for v in batch))
    if isinstance(batch, (tuple, list)):
        return type(batch)(_slice(v, n, lo, hi) for v in batch)
    return batch


def shard(batch: Any, world: int | None = None, r: int | None = None) -> Any:
    """Rank ``r``'s contiguous slice (:func:`shard_bounds`) of a global batch: a tensor or array, or tuples,
    lists, namedtuples and dicts of them. Every tensor or array whose first dimension is the batch length
    (:func:`batch_length`) is cut; anything else (a scalar, a per-batch constant) passes through whole. Without
    a process group, or for a batch without tensors, the batch comes back unchanged."""
    world = world_size() if world is None else world
    if world <= 1:
        return batch
    n = batch_length(batch)
    if n is None:
        return batch
    lo, hi = shard_bounds(n, world, rank() if r is None else r)
    return _slice(batch, n, lo, hi)


# ----------------------------------------------------------------------------------------------------------
# collectives
# ----------------------------------------------------------------------------------------------------------
def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    """The element-wise sum of ``values`` over the ranks (a new tensor on ``values``' device and dtype);
    ``values`` itself without a process group."""
    if world_size() <= 1:
        return values
    buf = values.detach().to(_comm_device(), dtype=torch.float64 if values.is_floating_point() else values.dtype,
                              copy=True)
    _dist().all_reduce(buf)
    return buf.to(values.device, values.dtype)


def all_gather_cat(t: torch.Tensor) -> torch.Tensor:
    """Concatenate every rank's ``t`` along dim 0, in rank order (ranks may hold different numbers of rows:
    each is padded to the longest and trimmed after the gather). ``t`` itself without a process group."""
    world = world_size()
    if world <= 1:
        return t
    dist = _dist()
    dev = _comm_device()
    sizes = torch.tensor([t.shape[0]], dtype=torch.int64, device=dev)
    all_sizes = [torch.zeros_like(sizes) for _ in range(world)]
    dist.all_gather(all_sizes, sizes)
    counts = [int(s.item()) for s in all_sizes]
    longest = max(counts)
    src = t.detach().to(dev)
    if src.shape[0] < longest:
        src = torch.cat([src, src.new_zeros((longest - src.shape[0], *src.shape[1:]))], 0)
    parts = [torch.empty_like(src) for _ in range(world)]
    dist.all_gather(parts, src.contiguous())
    return torch.cat([p[:c] for p, c in zip(parts, counts)], 0).to(t.device)


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """``obj`` as rank ``src`` has it, on every rank (pickled; small objects only)."""
    if world_size() <= 1:
        return obj
    box = [obj]
    _dist().broadcast_object_list(box, src=src, device=_comm_device() if _dist().get_backend() == "nccl" else None)
    return box[0]


def _grouped(tensors: list[torch.Tensor]) -> dict:
    groups: dict = {}
    for i, t in enumerate(tensors):
        groups.setdefault((t.dtype, t.device), []).append(i)
    return groups


def reduce_gradients(parameters, weight: float = 1.0) -> None:
    """Replace each parameter's gradient by the sum over the ranks of ``weight`` times the rank's gradient
    (``weight`` = the rank's share of the global batch, ``n_rank / n_global``: then the result is the gradient
    of the global mean loss). One all-reduce per dtype and device, flattened. A parameter that got no gradient on
    any rank keeps ``grad = None`` (so an optimizer skips it as in a 1-process run); one that got a gradient on
    some ranks only gets the sum of those (the others count as zero)."""
    if world_size() <= 1:
        return
    params = [p for p in parameters if p.requires_grad]
    if not params:
        return
    dist = _dist()
    dev = _comm_device()
    has = torch.tensor([p.grad is not None for p in params], dtype=torch.float32, device=dev)
    dist.all_reduce(has)
    has = has.tolist()  # one transfer, not one per parameter
    for (dtype, pdev), idx in _grouped([p.grad if p.grad is not None else p for p in params]).items():
        flat = torch.cat([(params[i].grad.detach() * weight if params[i].grad is not None
                           else torch.zeros_like(params[i], dtype=dtype)).reshape(-1) for i in idx]).to(dev)
        dist.all_reduce(flat)
        flat = flat.to(pdev)
        offset = 0
        for i in idx:
            p = params[i]
            k = p.numel()
            if has[i] > 0:
                g = flat[offset:offset + k].view_as(p)
                if p.grad is None:
                    p.grad = g.clone()
                else:
                    p.grad.copy_(g)
            offset += k


def average_buffers(module: torch.nn.Module) -> None:
    """Average the floating-point buffers (BatchNorm's running mean and variance) over the ranks, so every rank
    evaluates and saves the same model. Integer buffers (``num_batches_tracked``) agree already."""
    if world_size() <= 1:
        return
    bufs = [b for b in module.buffers() if b.is_floating_point()]
    if not bufs:
        return
    world = world_size()
    for (dtype, bdev), idx in _grouped(bufs).items():
        flat = torch.cat([bufs[i].detach().reshape(-1).to(torch.float64) for i in idx]).to(_comm_device())
        _dist().all_reduce(flat)
        flat = (flat / world).to(bdev)
        offset = 0
        for i in idx:
            k = bufs[i].numel()
            bufs[i].data.copy_(flat[offset:offset + k].view_as(bufs[i]).to(dtype))
            offset += k


def broadcast_module(module: torch.nn.Module, src: int = 0) -> None:
    """Copy rank ``src``'s parameters and buffers into every rank's ``module`` (so training starts from the same
    weights even where initialisation drew from an RNG in another order)."""
    if world_size() <= 1:
        return
    dist = _dist()
    dev = _comm_device()
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            buf = t.detach().to(dev, copy=True)
            dist.broadcast(buf, src=src)
            t.data.copy_(buf.to(t.device))


# ----------------------------------------------------------------------------------------------------------
# BatchNorm on CUDA: SyncBatchNorm while training
# ----------------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def sync_batchnorm(module: torch.nn.Module, on: bool = True):
    """Within the block every BatchNorm layer of ``module`` is a ``torch.nn.SyncBatchNorm`` sharing its
    parameters and running statistics (batch statistics over the global batch, as in a 1-process run); the
    original layers are put back afterwards. Only where ``on`` and a process group with more than one rank is
    up: torch's SyncBatchNorm needs GPU tensors (it raises on CPU), so :func:`fashionlab.engine.fit` asks for it
    on CUDA only."""
    from torch.nn.modules.batchnorm import _BatchNorm

    swapped = []
    if on and world_size() > 1:
        for parent in list(module.modules()):
            for name, child in list(parent.named_children()):
                if isinstance(child, _BatchNorm) and not isinstance(child, torch.nn.SyncBatchNorm):
                    sync = torch.nn.SyncBatchNorm(child.num_features, child.eps, child.momentum, child.affine,
                                                  child.track_running_stats)
                    if child.affine:
                        sync.weight, sync.bias = child.weight, child.bias
                    sync.train(child.training)
                    if child.track_running_stats:
                        sync.running_mean, sync.running_var = child.running_mean, child.running_var
                        sync.num_batches_tracked = child.num_batches_tracked
                    setattr(parent, name, sync)
                    swapped.append((parent, name, child, sync))
    try:
        yield
    finally:
        for parent, name, child, sync in reversed(swapped):
            child.train(sync.training)
            setattr(parent, name, child)
