"""Attribute schemas shared by every notebook.

An :class:`AttributeSchema` is the Python form of an ASEN ``meta.json``: an ordered list of attribute
dimensions (``ATTRIBUTES``), the number of values of each (``ATTRIBUTES_NUM``) and, where known, the value
names (``ATTRIBUTES_VALUES``). Attribute *indices* are positions in ``attributes``; value *indices* are
positions in ``values[attribute]``. These are the integers found in the ASEN split files
(``<image id> <attribute idx> <value idx>``, docs/formats.md §5.1).

FashionAI's eight dimensions and value names follow docs/formats.md §5.2 (asen ``meta.json`` at commit 7094b13);
value 0 is always "Invisible". A later copy of that file (commit a69f088) spells some length values with a
" Length" suffix ("Short Length"); the indices are the same.
"""
from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["AttributeSchema", "FASHIONAI"]


@dataclass(frozen=True)
class AttributeSchema:
    """Ordered attribute dimensions with their value counts and (optional) value names.

    Parameters
    ----------
    name:
        Dataset name, e.g. ``"FashionAI"``.
    attributes:
        Attribute names in index order (``ATTRIBUTES`` of ``meta.json``).
    num_values:
        Number of values per attribute, same order (``ATTRIBUTES_NUM``).
    values:
        Optional value names per attribute (``ATTRIBUTES_VALUES``); empty when unknown.
    """

    name: str
    attributes: tuple[str, ...]
    num_values: tuple[int, ...]
    values: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self):
        if len(self.attributes) != len(self.num_values):
            raise ValueError(
                f"schema {self.name!r}: {len(self.attributes)} attributes but {len(self.num_values)} value counts"
            )
        for attr, names in self.values.items():
            n = self.num_values[self.index(attr)]
            if len(names) != n:
                raise ValueError(f"schema {self.name!r}: {attr!r} has {n} values but {len(names)} names")

    @property
    def num_attributes(self) -> int:
        return len(self.attributes)

    def index(self, attribute: str) -> int:
        """Index of an attribute name; a clear error for an unknown one."""
        try:
            return self.attributes.index(attribute)
        except ValueError:
            raise KeyError(
                f"unknown attribute {attribute!r} for {self.name}; expected one of {list(self.attributes)}"
            ) from None

    def value_name(self, attribute: int | str, value: int) -> str:
        """Human-readable name of ``value`` of ``attribute`` (index or name); ``str(value)`` when unnamed."""
        attr = self.attributes[attribute] if isinstance(attribute, int) else attribute
        names = self.values.get(attr)
        return names[value] if names else str(value)

    def to_meta(self) -> dict:
        """The ``meta.json`` dictionary (keys as in the ASEN repositories)."""
        meta = {
            "ATTRIBUTES": list(self.attributes),
            "ATTRIBUTES_NUM": {a: n for a, n in zip(self.attributes, self.num_values)},
        }
        if self.values:
            meta["ATTRIBUTES_VALUES"] = {a: list(self.values[a]) for a in self.attributes if a in self.values}
        return meta

    @classmethod
    def from_meta(cls, meta: dict, name: str = "dataset") -> "AttributeSchema":
        """Build a schema from a flat ``meta.json`` dictionary (``ATTRIBUTES``, ``ATTRIBUTES_NUM``, ...)."""
        attributes = tuple(meta["ATTRIBUTES"])
        num = tuple(int(meta["ATTRIBUTES_NUM"][a]) for a in attributes)
        values = {a: tuple(v) for a, v in meta.get("ATTRIBUTES_VALUES", {}).items()}
        return cls(name=name, attributes=attributes, num_values=num, values=values)


_FASHIONAI_VALUES = {
    "skirt_length": ("Invisible", "Short", "Knee", "Midi", "Ankle", "Floor Length"),
    "sleeve_length": (
        "Invisible", "Sleeveless", "Cup Sleeves", "Short Sleeves", "Elbow Sleeves", "3/4 Sleeves",
        "Wrist Length", "Long Sleeves", "Extra Long Sleeves",
    ),
    "coat_length": (
        "Invisible", "High Waist", "Regular", "Long", "Micro", "Knee", "Midi", "Ankle&Floor Length",
    ),
    "pant_length": ("Invisible", "Short Pant", "Mid Length", "3/4 Length", "Cropped Pant", "Full Length"),
    "collar_design": ("Invisible", "Shirt Collar", "Peter Pan", "Puritan Collar", "Rib Collar"),
    "lapel_design": ("Invisible", "Notched", "Collarless", "Shawl Collar", "Plus Size Shawl"),
    "neckline_design": (
        "Invisible", "Strapless Neck", "Deep V Neckline", "Straight Neck", "V Neck", "Square Neckline",
        "Off Shoulder", "Round Neckline", "Sweat Heart Neck", "OneShoulder Neckline",
    ),
    "neck_design": ("Invisible", "Turtle Neck", "Ruffle Semi-High Collar", "Low Turtle Neck", "Draped Collar"),
}

#: FashionAI's eight attribute dimensions (docs/formats.md §5.2), in the ASEN index order.
FASHIONAI = AttributeSchema(
    name="FashionAI",
    attributes=tuple(_FASHIONAI_VALUES),
    num_values=tuple(len(v) for v in _FASHIONAI_VALUES.values()),
    values=_FASHIONAI_VALUES,
)
