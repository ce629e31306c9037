"""Triplet samplers for attribute-specific metric learning.

Three ways of turning single-attribute labels into ``(anchor, positive, negative, attribute)`` triplets:

* :class:`AsenPPTripletSampler`: ASEN++ (docs/implementations.md §3 "TripletSampler"): attribute uniform, two
  distinct values ``vp != vn`` uniform, anchor and positive two distinct images with ``vp``, negative an image
  with ``vn``.
* :class:`AsenV1TripletSampler`: ASEN v1 (docs/implementations.md §2 "Triplet sampling (v1)"): attribute
  uniform, value uniform in ``[0, NUM)``, anchor and positive two distinct images with that value, negative an
  image (uniform over images) of the same attribute with another value.
* :class:`Paper01TripletPool`: the fixed pool of paper 01, section "Datasets and Triplets Building": every
  labelled image is the anchor of exactly one triplet.

Conventions shared by all three:

* Input ``labels``: ``int64 (n, 3)`` rows ``(image id, attribute index, value index)``, e.g.
  ``AsenSplit.labels`` or ``FashionAILabels.items``. An image may carry several attributes (one row each) but
  only one value per attribute.
* Output of ``triplets(epoch)``: ``int64 (n, 4)`` of **image ids** ``(anchor id, positive id, negative id,
  attribute index)``, not row indices of ``labels``, so that the triplets index the file list directly and
  :class:`~fashionlab.datasets.images.TripletDataset` loads them by id. Note the order: positive before negative
  (ASEN v1's own loader yields ``(anchor, negative, positive)``; we don't).
* Deterministic from ``(seed, epoch)``: the generator is ``numpy.random.default_rng([seed, epoch])``, so a run
  resumed at epoch ``e`` sees the same triplets as an uninterrupted one; different epochs differ.
* A value with fewer than 2 images cannot give an anchor and a distinct positive: that is a
  :class:`RareValueError` naming the attribute, the value and its count (the reference samplers loop forever or
  raise an unhelpful error, §2/§3). ``skip_rare=True`` samples only among values with enough images and records the
  skipped ones in ``sampler.skipped`` (and whole attributes left without enough values in
  ``sampler.skipped_attributes``).
* Sampling is vectorised numpy: 100,000 triplets take a few milliseconds.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..taxonomy import AttributeSchema

__all__ = [
    "RareValueError",
    "SkippedValue",
    "LabelIndex",
    "AsenPPTripletSampler",
    "AsenV1TripletSampler",
    "Paper01TripletPool",
    "ClassTripletSampler",
    "check_triplets",
]


class RareValueError(ValueError):
    """A value has too few images to sample triplets from (pass ``skip_rare=True`` to skip it)."""


@dataclass(frozen=True)
class SkippedValue:
    """A value left out of sampling by ``skip_rare=True``."""

    attribute: int
    attribute_name: str
    value: int
    count: int

    def __str__(self) -> str:
        return f"{self.attribute_name}={self.value} ({self.count} image{'s' if self.count != 1 else ''})"


def _rng(seed: int, epoch: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(epoch)])


def _num_values(schema) -> tuple[tuple[str, ...], np.ndarray]:
    if isinstance(schema, AttributeSchema):
        return schema.attributes, np.asarray(schema.num_values, dtype=np.int64)
    nv = np.asarray(list(schema), dtype=np.int64)
    return tuple(f"attribute {i}" for i in range(len(nv))), nv


class LabelIndex:
    """Image ids grouped by (attribute, value), for vectorised sampling (the per-value image lists that the ASEN
    samplers of docs/implementations.md §2/§3 build).

    ``ids`` holds the unique image ids sorted by (attribute, value, id); the ids with attribute ``a`` and value
    ``v`` are ``ids[start[a, v] : start[a, v] + count[a, v]]``, and all ids of attribute ``a`` are the contiguous
    block ``ids[attr_start[a] : attr_start[a] + attr_count[a]]`` (values in increasing order).

    ``schema`` is an :class:`~fashionlab.taxonomy.AttributeSchema` or a sequence of value counts.
    """

    def __init__(self, labels, schema):
        self.attribute_names, self.num_values = _num_values(schema)
        labels = np.asarray(labels, dtype=np.int64)
        if labels.size == 0:
            labels = labels.reshape(0, 3)
        if labels.ndim != 2 or labels.shape[1] != 3:
            raise ValueError(f"labels must have shape (n, 3) (image id, attribute, value); got {labels.shape}")
        na = len(self.num_values)
        ids, attrs, vals = labels[:, 0], labels[:, 1], labels[:, 2]
        bad = (ids < 0) | (attrs < 0) | (attrs >= na)
        bad |= (vals < 0) | (vals >= self.num_values[np.clip(attrs, 0, na - 1)])
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"label row {i} {labels[i].tolist()} is out of range of the schema "
                             f"({na} attributes with {self.num_values.tolist()} values)")
        rows = np.unique(labels[:, [1, 2, 0]], axis=0)  # (attr, value, id), sorted, duplicates dropped
        pair = np.unique(rows[:, [0, 2]], axis=0, return_counts=True)
        if len(pair[1]) and pair[1].max() > 1:
            a, i = pair[0][int(np.argmax(pair[1]))]
            vs = rows[(rows[:, 0] == a) & (rows[:, 2] == i), 1].tolist()
            raise ValueError(f"image id {i} has several values {vs} for attribute {a} "
                             f"({self.attribute_names[a]!r}); expected one value per attribute")
        self.ids = rows[:, 2].copy()
        vmax = int(self.num_values.max()) if na else 0
        self.count = np.bincount(rows[:, 0] * vmax + rows[:, 1], minlength=na * vmax).reshape(na, vmax)
        flat_start = np.concatenate([[0], np.cumsum(self.count.ravel())[:-1]])
        self.start = flat_start.reshape(na, vmax)
        self.attr_count = self.count.sum(axis=1)
        self.attr_start = self.start[:, 0].copy()

    @property
    def num_attributes(self) -> int:
        return len(self.num_values)

    def group(self, attribute: int, value: int) -> np.ndarray:
        """Image ids with ``value`` for ``attribute``."""
        s = self.start[attribute, value]
        return self.ids[s : s + self.count[attribute, value]]

    def value_counts(self, attribute: int) -> np.ndarray:
        """Number of images of each value of ``attribute`` (length ``num_values[attribute]``)."""
        return self.count[attribute, : self.num_values[attribute]].copy()


class _SamplerBase:
    name = "triplet"
    min_values = 2  # an attribute needs this many usable values

    def __init__(self, labels, schema, num_triplets: int = 100_000, seed: int = 0, skip_rare: bool = False):
        self.index = labels if isinstance(labels, LabelIndex) else LabelIndex(labels, schema)
        self.num_triplets = int(num_triplets)
        if self.num_triplets < 0:
            raise ValueError(f"num_triplets must be >= 0, got {num_triplets}")
        self.seed = int(seed)
        self.skip_rare = bool(skip_rare)
        self.skipped: list[SkippedValue] = []
        self.skipped_attributes: list[str] = []
        self._prepare()

    # usable values: (A, Vmax) bool
    def _usable(self) -> np.ndarray:
        idx = self.index
        vmax = idx.count.shape[1]
        in_range = np.arange(vmax)[None, :] < idx.num_values[:, None]
        return in_range & (idx.count >= 2)

    def _rare_message(self, a: int, v: int, c: int) -> str:
        names = self.index.attribute_names
        return (f"attribute {names[a]!r} (index {a}) value {v} has {c} image{'s' if c != 1 else ''}; {self.name} "
                f"sampling needs at least 2 images per value (anchor and a distinct positive). Pass skip_rare=True "
                f"to sample only among values with enough images.")

    def _prepare(self) -> None:
        idx = self.index
        usable = self._usable()
        vmax = idx.count.shape[1]
        in_range = np.arange(vmax)[None, :] < idx.num_values[:, None]
        rare = in_range & ~usable
        if rare.any() and not self.skip_rare:
            a, v = map(int, np.argwhere(rare)[0])
            raise RareValueError(self._rare_message(a, v, int(idx.count[a, v])))
        self.skipped = [SkippedValue(int(a), idx.attribute_names[a], int(v), int(idx.count[a, v]))
                        for a, v in np.argwhere(rare)]
        attr_ok = self._attribute_ok(usable)
        if not self.skip_rare and not attr_ok.all():
            a = int(np.flatnonzero(~attr_ok)[0])
            raise RareValueError(f"attribute {idx.attribute_names[a]!r} (index {a}) cannot give {self.name} "
                                 f"triplets: {self._attr_problem(a, usable)}")
        self.skipped_attributes = [idx.attribute_names[a] for a in np.flatnonzero(~attr_ok)]
        self.attributes = np.flatnonzero(attr_ok).astype(np.int64)
        if self.num_triplets and len(self.attributes) == 0:
            raise RareValueError(f"no attribute has enough labelled images for {self.name} sampling "
                                 f"(skipped values: {', '.join(map(str, self.skipped)) or 'none'})")
        usable &= attr_ok[:, None]
        # table of usable values per attribute, padded
        self.n_usable = usable.sum(axis=1)
        self.usable_values = np.zeros_like(idx.count)
        for a in range(idx.num_attributes):
            vs = np.flatnonzero(usable[a])
            self.usable_values[a, : len(vs)] = vs

    def _attribute_ok(self, usable: np.ndarray) -> np.ndarray:
        return usable.sum(axis=1) >= 2

    def _attr_problem(self, a: int, usable: np.ndarray) -> str:
        return f"only {int(usable[a].sum())} value(s) with at least 2 images; needs 2"

    def __len__(self) -> int:
        return self.num_triplets

    def triplets(self, epoch: int = 0) -> np.ndarray:
        """``int64 (num_triplets, 4)``: ``(anchor id, positive id, negative id, attribute)`` for ``epoch``."""
        rng = _rng(self.seed, epoch)
        n = self.num_triplets
        if n == 0:
            return np.zeros((0, 4), dtype=np.int64)
        return self._sample(rng, n)

    def __repr__(self) -> str:
        skipped = f", skipped {len(self.skipped)} value(s)" if self.skipped else ""
        return f"{type(self).__name__}({self.num_triplets} triplets/epoch, seed={self.seed}{skipped})"


def _pick_two_distinct(rng, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two distinct uniform indices in ``[0, k)`` per entry (k >= 2)."""
    i = (rng.random(len(k)) * k).astype(np.int64)
    j = (rng.random(len(k)) * (k - 1)).astype(np.int64)
    j += j >= i
    return i, j


class AsenPPTripletSampler(_SamplerBase):
    """ASEN++ triplet sampling (docs/implementations.md §3 "TripletSampler").

    Per triplet: attribute ``a`` uniform (over attributes that can give triplets); two distinct values
    ``vp != vn`` uniform among ``a``'s values; anchor and positive two distinct images with ``vp``; negative one
    image with ``vn``. Every value needs at least 2 images (the reference raises inside ``random.sample``
    otherwise); see the module docstring for ``skip_rare``. Returns image ids (module docstring).
    """

    name = "ASEN++"

    def _sample(self, rng, n: int) -> np.ndarray:
        idx = self.index
        attr = self.attributes[rng.integers(len(self.attributes), size=n)]
        k = self.n_usable[attr]
        ip, iq = _pick_two_distinct(rng, k)
        vp = self.usable_values[attr, ip]
        vn = self.usable_values[attr, iq]
        cp = idx.count[attr, vp]
        ia, ipos = _pick_two_distinct(rng, cp)
        ineg = (rng.random(n) * idx.count[attr, vn]).astype(np.int64)
        sp, sn = idx.start[attr, vp], idx.start[attr, vn]
        return np.stack([idx.ids[sp + ia], idx.ids[sp + ipos], idx.ids[sn + ineg], attr], axis=1)


class AsenV1TripletSampler(_SamplerBase):
    """ASEN v1 triplet sampling (docs/implementations.md §2 "Triplet sampling (v1)").

    Per triplet: attribute ``a`` uniform; value ``v`` uniform in ``[0, NUM_a)`` (class-balanced, not frequency
    weighted); anchor and positive two distinct images with ``v``; negative uniform over the images of ``a`` with
    any other value (what the reference's rejection sampling converges to). Where the reference loops forever
    (a value with fewer than 2 images), this raises :class:`RareValueError`; with ``skip_rare=True`` such values are
    never drawn as ``v`` but their images still serve as negatives. Returns image ids (module docstring).
    """

    name = "ASEN v1"

    def _attribute_ok(self, usable: np.ndarray) -> np.ndarray:
        # a usable value, and at least one image with another value
        idx = self.index
        ok = np.zeros(idx.num_attributes, dtype=bool)
        for a in range(idx.num_attributes):
            vs = np.flatnonzero(usable[a])
            ok[a] = any(idx.attr_count[a] - idx.count[a, v] >= 1 for v in vs)
            if ok[a]:
                # drop usable values without any negative (only when all images share that value)
                for v in vs:
                    if idx.attr_count[a] - idx.count[a, v] < 1:
                        usable[a, v] = False
        return ok

    def _attr_problem(self, a: int, usable: np.ndarray) -> str:
        return "needs a value with at least 2 images and at least one image with another value"

    def _sample(self, rng, n: int) -> np.ndarray:
        idx = self.index
        attr = self.attributes[rng.integers(len(self.attributes), size=n)]
        iv = (rng.random(n) * self.n_usable[attr]).astype(np.int64)
        v = self.usable_values[attr, iv]
        c = idx.count[attr, v]
        ia, ipos = _pick_two_distinct(rng, c)
        s = idx.start[attr, v]
        # negative: uniform over the attribute's block minus the value's sub-block
        block_s = idx.attr_start[attr]
        r = (rng.random(n) * (idx.attr_count[attr] - c)).astype(np.int64)
        r += (r >= s - block_s) * c
        return np.stack([idx.ids[s + ia], idx.ids[s + ipos], idx.ids[block_s + r], attr], axis=1)


class Paper01TripletPool(_SamplerBase):
    """The triplet pool of paper 01 (Multi-column recognition and retrieval), section "Datasets and Triplets Building".

    As the paper describes it, for each attribute dimension and each value ``v`` of it:

    1. pool1 = the images labelled ``v``; pool2 = the images of the same attribute with any other value;
    2. each image of pool1 in turn becomes an anchor and is *removed* from pool1; the positive is drawn uniformly
       from what is left of pool1 and is *not* removed; the negative is drawn from pool2 *without replacement*;
    3. this continues until every image of pool1 has been an anchor.

    So every labelled image is the anchor of exactly one triplet (the paper: 79,573 triplets from 79,573 images),
    and no two triplets are identical. The paper leaves three points open; our choices:

    * the order in which pool1's images become anchors is a random permutation (seeded);
    * the last anchor of a value finds pool1 empty: its positive is drawn from the other images of the value;
    * when pool1 is larger than pool2, pool2 is exhausted: it is then refilled (reshuffled) and drawing without
      replacement goes on, so every image of pool2 is used ``floor`` or ``ceil`` of ``len(pool1)/len(pool2)``
      times.

    The pool is shuffled (seeded) as a whole. The paper then splits it 0.7/0.3 into training and validation:
    :meth:`split`. ``triplets(epoch)`` returns the same fixed pool for every epoch, as in the paper, unless
    ``resample_each_epoch=True`` (then the pool is rebuilt from ``(seed, epoch)``). A value with a single image
    cannot give a positive: :class:`RareValueError`, or with ``skip_rare=True`` its image is left without a
    triplet (listed in ``skipped``). Returns image ids (module docstring).
    """

    name = "paper-01 pool"

    def __init__(self, labels, schema, seed: int = 0, skip_rare: bool = False, resample_each_epoch: bool = False):
        super().__init__(labels, schema, num_triplets=0, seed=seed, skip_rare=skip_rare)
        self.resample_each_epoch = bool(resample_each_epoch)
        self._pool = self._build(_rng(self.seed, 0))
        self.num_triplets = len(self._pool)

    def _prepare(self) -> None:
        idx = self.index
        vmax = idx.count.shape[1]
        in_range = np.arange(vmax)[None, :] < idx.num_values[:, None]
        single = in_range & (idx.count == 1)
        no_neg = in_range & (idx.count > 0) & (idx.count == idx.attr_count[:, None])
        bad = single | no_neg
        if bad.any() and not self.skip_rare:
            a, v = map(int, np.argwhere(bad)[0])
            if single[a, v]:
                raise RareValueError(self._rare_message(a, v, 1))
            raise RareValueError(f"attribute {idx.attribute_names[a]!r} (index {a}): all {int(idx.count[a, v])} "
                                 f"images have value {v}, so pool2 (negatives) is empty")
        self.skipped = [SkippedValue(int(a), idx.attribute_names[a], int(v), int(idx.count[a, v]))
                        for a, v in np.argwhere(bad)]
        self.groups = [(int(a), int(v)) for a, v in np.argwhere(in_range & (idx.count >= 2) & ~no_neg)]
        self.attributes = np.unique([a for a, _ in self.groups]).astype(np.int64)
        self.skipped_attributes = [idx.attribute_names[a] for a in range(idx.num_attributes)
                                   if a not in set(self.attributes.tolist())]

    def _build(self, rng) -> np.ndarray:
        idx = self.index
        out = []
        for a, v in self.groups:
            pool1 = rng.permutation(idx.group(a, v))
            k = len(pool1)
            bs, bc = idx.attr_start[a], idx.attr_count[a]
            s, c = idx.start[a, v], idx.count[a, v]
            pool2 = np.concatenate([idx.ids[bs:s], idx.ids[s + c : bs + bc]])
            m = len(pool2)
            # positive of anchor i: uniform among positions i+1..k-1 (what is left of pool1); last: among 0..k-2
            i = np.arange(k)
            left = k - 1 - i
            pos = i + 1 + (rng.random(k) * left).astype(np.int64)
            pos[-1] = int(rng.random() * (k - 1))
            # negatives without replacement from pool2, refilled when exhausted
            reps = -(-k // m)
            neg = np.concatenate([rng.permutation(pool2) for _ in range(reps)])[:k]
            out.append(np.stack([pool1, pool1[pos], neg, np.full(k, a)], axis=1))
        pool = np.concatenate(out) if out else np.zeros((0, 4), dtype=np.int64)
        return pool[rng.permutation(len(pool))].astype(np.int64)

    def triplets(self, epoch: int = 0) -> np.ndarray:
        """The pool (the same for every epoch unless ``resample_each_epoch``)."""
        if self.resample_each_epoch and epoch != 0:
            return self._build(_rng(self.seed, epoch))
        return self._pool.copy()

    def split(self, train_fraction: float = 0.7) -> tuple[np.ndarray, np.ndarray]:
        """The paper's training/validation split of the pool (0.7/0.3 by default): first and last part."""
        if not 0.0 <= train_fraction <= 1.0:
            raise ValueError(f"train_fraction must be in [0, 1], got {train_fraction}")
        cut = int(round(train_fraction * len(self._pool)))
        return self._pool[:cut].copy(), self._pool[cut:].copy()


def check_triplets(triplets, labels) -> None:
    """Check the triplet constraints of docs/implementations.md §2/§3 against ``labels`` ``(image id, attribute, value)``.

    For every row ``(a, p, n, attr)``: the three images are labelled for ``attr``, ``a`` and ``p`` share a value,
    ``n`` has another value, and ``a != p``. Raises :class:`ValueError` naming the first bad row.
    """
    t = np.asarray(triplets, dtype=np.int64)
    labels = np.asarray(labels, dtype=np.int64)
    if len(t) == 0:
        return
    nmax = int(max(labels[:, 0].max(), t[:, :3].max())) + 1
    na = int(max(labels[:, 1].max(), t[:, 3].max())) + 1
    table = np.full((na, nmax), -1, dtype=np.int64)
    table[labels[:, 1], labels[:, 0]] = labels[:, 2]
    attr = t[:, 3]
    va, vp, vn = table[attr, t[:, 0]], table[attr, t[:, 1]], table[attr, t[:, 2]]
    checks = {
        "anchor not labelled for the attribute": va < 0,
        "positive not labelled for the attribute": vp < 0,
        "negative not labelled for the attribute": vn < 0,
        "anchor and positive differ in value": va != vp,
        "negative has the anchor's value": vn == va,
        "anchor and positive are the same image": t[:, 0] == t[:, 1],
    }
    for what, bad in checks.items():
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"triplet {i} {t[i].tolist()}: {what}")


class ClassTripletSampler:
    """Class-level triplets of paper 05 (M3-Net §3.2, Eq. 9-10), for multi-label attributes.

    Per triplet: an attribute ``A_n`` uniform (over attributes with a usable class), a class ``C_m`` of it
    uniform (over its usable classes); anchor and positive two distinct images that have ``C_m``; negative an
    image labelled for ``A_n`` that does *not* have ``C_m`` (Eq. 9: ``C_m = C⁺ ≠ C⁻``). With multi-label
    attributes the negative may share other classes of ``A_n`` with the anchor; the loss only asks it to be
    farther in ``C_m``'s space. With single-label data (one class per attribute) this is ASEN v1's sampling
    (value uniform, negative any other value of the attribute).

    ``positives``: ``(num_images, K)`` bool, image ``i`` has class ``k`` (classes of all attributes side by
    side); ``class_attribute``: ``(K,)`` the attribute of each class; ``labelled``: ``(num_images, N)`` bool,
    image ``i`` is annotated for attribute ``n`` (default: it has a class of ``n``). A class is *usable* with at
    least two positive images and one negative; unusable classes are listed in ``skipped`` (class indices).
    ``triplets(epoch)`` returns ``int64 (num_triplets, 5)``: ``(anchor id, positive id, negative id, attribute,
    class)`` with the class as a global index ``k``; deterministic from ``(seed, epoch)``.
    """

    name = "class-level"

    def __init__(self, positives, class_attribute, labelled=None, num_triplets: int = 40_000, seed: int = 0):
        pos = np.asarray(positives, dtype=bool)
        ca = np.asarray(class_attribute, dtype=np.int64)
        if pos.ndim != 2 or ca.shape != (pos.shape[1],):
            raise ValueError(f"positives must be (num_images, K) and class_attribute (K,); got {pos.shape} "
                             f"and {ca.shape}")
        n_attr = int(ca.max()) + 1 if len(ca) else 0
        if labelled is None:
            labelled = np.stack([pos[:, ca == a].any(axis=1) for a in range(n_attr)], axis=1)
        lab = np.asarray(labelled, dtype=bool)
        if lab.shape != (pos.shape[0], n_attr):
            raise ValueError(f"labelled must be (num_images, {n_attr}), got {lab.shape}")
        if (pos & ~lab[:, ca]).any():
            i, k = map(int, np.argwhere(pos & ~lab[:, ca])[0])
            raise ValueError(f"image {i} has class {k} but is not labelled for its attribute {ca[k]}")
        self.num_triplets, self.seed = int(num_triplets), int(seed)
        self.class_attribute = ca
        self.members = [np.flatnonzero(pos[:, k]) for k in range(pos.shape[1])]
        self.nonmembers = [np.flatnonzero(lab[:, ca[k]] & ~pos[:, k]) for k in range(pos.shape[1])]
        usable = np.array([len(m) >= 2 and len(o) >= 1 for m, o in zip(self.members, self.nonmembers)], dtype=bool)
        self.skipped = np.flatnonzero(~usable)
        self.classes_of = [np.flatnonzero(usable & (ca == a)) for a in range(n_attr)]
        self.attributes = np.array([a for a in range(n_attr) if len(self.classes_of[a])], dtype=np.int64)
        if not len(self.attributes):
            raise RareValueError("no class has two positive images and a negative: nothing to sample")

    def triplets(self, epoch: int = 0) -> np.ndarray:
        rng = _rng(self.seed, epoch)
        n = self.num_triplets
        attr = self.attributes[rng.integers(len(self.attributes), size=n)]
        cls = np.empty(n, dtype=np.int64)
        for a in np.unique(attr):
            rows = np.flatnonzero(attr == a)
            cls[rows] = self.classes_of[a][rng.integers(len(self.classes_of[a]), size=len(rows))]
        out = np.empty((n, 5), dtype=np.int64)
        out[:, 3], out[:, 4] = attr, cls
        for k in np.unique(cls):
            rows = np.flatnonzero(cls == k)
            mem, non = self.members[k], self.nonmembers[k]
            ia, ip = _pick_two_distinct(rng, np.full(len(rows), len(mem)))
            out[rows, 0], out[rows, 1] = mem[ia], mem[ip]
            out[rows, 2] = non[rng.integers(len(non), size=len(rows))]
        return out
