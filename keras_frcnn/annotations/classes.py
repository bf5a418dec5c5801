"""Class maps: an explicit, ordered list of class names, saved with every run as JSON."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from keras_frcnn.errors import UserError


def chromosome_labels() -> tuple[str, ...]:
    """The paper's 49 labels (Table 1) in karyotype order.

    ``N-l``/``N-r`` are the left/right members of pair N, ``5-?`` and ``X-?`` the exceptions
    whose side could not be told, ``Y`` the single Y chromosome.
    """
    labels: list[str] = []
    for number in range(1, 23):
        labels += [f"{number}-l", f"{number}-r"]
        if number == 5:
            labels.append("5-?")
    labels += ["X-l", "X-r", "X-?", "Y"]
    return tuple(labels)


def chromosome_classes() -> tuple[str, ...]:
    """The 24 chromosome classes without sides, in karyotype order: ``1``..``22``, ``X``, ``Y``."""
    return tuple(str(number) for number in range(1, 23)) + ("X", "Y")


_CHROMOSOME_LABEL = re.compile(r"(?P<chromosome>[1-9]|1[0-9]|2[0-2]|X|Y)(?:-(?P<side>[lr?]))?")


def chromosome_of(label: str) -> str | None:
    """``"5-?"`` -> ``"5"``, ``"X-l"`` -> ``"X"``, ``"7"`` -> ``"7"``, ``"Y"`` -> ``"Y"``; None if not
    a chromosome label of either scheme."""
    found = _CHROMOSOME_LABEL.fullmatch(str(label).strip())
    return found.group("chromosome") if found else None


def karyotype_sort_key(label: str) -> tuple[int, int]:
    """Sorts chromosome labels of either scheme in karyotype order (``1``/``1-l``, ``1-r``, ..., ``5-?``,
    ..., ``X-?``, ``Y``); other names after them."""
    found = _CHROMOSOME_LABEL.fullmatch(str(label).strip())
    if not found:
        return len(chromosome_classes()), 0
    side = found.group("side") or ""
    return chromosome_classes().index(found.group("chromosome")), "lr?".find(side) + 1 if side else 0


@dataclass(frozen=True)
class ClassMap:
    """Ordered object classes; index ``i`` is class id ``i`` (the model adds its background)."""

    names: tuple[str, ...]

    def __post_init__(self):
        names = tuple(str(n) for n in self.names)
        if not names:
            raise UserError("the class list is empty")
        seen: set[str] = set()
        for name in names:
            if not name or name != name.strip():
                raise UserError(f"invalid class name {name!r} (empty or surrounded by spaces)")
            if name in seen:
                raise UserError(f"class {name!r} is listed twice")
            seen.add(name)
        object.__setattr__(self, "names", names)

    @classmethod
    def chromosomes(cls) -> "ClassMap":
        """The paper's 49 labels (:func:`chromosome_labels`)."""
        return cls(chromosome_labels())

    @classmethod
    def chromosomes24(cls) -> "ClassMap":
        """The 24 classes ``1``..``22``, ``X``, ``Y`` (:func:`chromosome_classes`)."""
        return cls(chromosome_classes())

    @classmethod
    def from_labels(cls, labels: Iterable[str], order: Sequence[str] | None = None) -> "ClassMap":
        """A map of the labels seen in a data set: karyotype order for chromosome labels of either
        scheme (or ``order`` if given), then any others sorted by name."""
        present = set(labels)
        if order is None:
            order = sorted((name for name in present if chromosome_of(name)), key=karyotype_sort_key)
        known = [name for name in order if name in present]
        others = sorted(present - set(known))
        return cls(tuple(known + others))

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "ClassMap":
        """Read a class list: a JSON list / ``{"classes": [...]}``, or a text file, one name a line."""
        path = os.fspath(path)
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except OSError as err:
            raise UserError(f"{path}: cannot read class list ({err.strerror})") from None
        if path.endswith(".json"):
            try:
                data = json.loads(text)
            except json.JSONDecodeError as err:
                raise UserError(f"{path}:{err.lineno}: invalid JSON ({err.msg})") from None
            if isinstance(data, dict):
                data = data.get("classes")
            if not isinstance(data, list) or not all(isinstance(n, str) for n in data):
                raise UserError(f"{path}: expected a JSON list of class names or {{\"classes\": [...]}}")
            return cls(tuple(data))
        names = [line.strip() for line in text.splitlines()]
        return cls(tuple(n for n in names if n and not n.startswith("#")))

    def save(self, path: str | os.PathLike) -> None:
        """Write ``{"classes": [...]}`` (readable back by :meth:`from_file`)."""
        with open(path, "w", encoding="utf-8") as handle:
            json.dump({"classes": list(self.names)}, handle, indent=2)
            handle.write("\n")

    def __len__(self) -> int:
        return len(self.names)

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(name) from None

    def to_ids(self, labels: Sequence[str]) -> np.ndarray:
        """Class names -> int32 ids (0-based)."""
        lookup = {name: i for i, name in enumerate(self.names)}
        return np.asarray([lookup[label] for label in labels], dtype=np.int32).reshape(-1)
