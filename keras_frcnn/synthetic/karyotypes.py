"""Which chromosomes a cell has (its karyotype) and how its chromosomes are labelled.

Karyotypes: 46,XX and 46,XY are equally likely; with probability ``abnormal_rate`` the cell is
instead one of the common aneuploidies, chosen uniformly: trisomy 13, 18 or 21 (47,XX,+N or
47,XY,+N, sex by a coin flip), Turner 45,X or Klinefelter 47,XXY.

Labels (the paper's 49 classes, :func:`keras_frcnn.annotations.classes.chromosome_labels`):

* autosome ``N``: the copy whose box centre is leftmost in the image is ``N-l``, every other
  copy ``N-r`` (so a normal pair gives ``N-l``, ``N-r`` and a trisomy ``N-l``, ``N-r``, ``N-r``);
* ``X`` the same way (``X-l``, then ``X-r``), so 46,XY and 45,X have ``X-l`` only;
* ``Y`` is always ``Y``;
* with probability ``exception_rate`` per image one chromosome 5 or X (uniformly among the
  copies present) is relabelled ``5-?`` / ``X-?``: its side "could not be told".

In a karyogram the leftmost copy is the left member of the pair, as in the paper's tables; in a
metaphase spread it is the one further left in the image. Ties (equal centres) keep the order
in which the chromosomes were laid out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from keras_frcnn.errors import UserError
from keras_frcnn.synthetic.cytobands import CHROMOSOMES

AUTOSOMES: tuple[str, ...] = CHROMOSOMES[:22]
TRISOMIES: tuple[str, ...] = ("13", "18", "21")
EXCEPTION_CHROMOSOMES: tuple[str, ...] = ("5", "X")


@dataclass(frozen=True)
class Karyotype:
    """A cell's chromosome complement: ``chromosomes`` in karyotype order, ISCN ``name``, ``sex``."""

    name: str
    sex: str  # "female" | "male"
    chromosomes: tuple[str, ...]

    def count(self, chromosome: str) -> int:
        return self.chromosomes.count(chromosome)

    @property
    def normal(self) -> bool:
        return self.name in ("46,XX", "46,XY")


def make_karyotype(sex_chromosomes: str, extra: str | None = None) -> Karyotype:
    """The karyotype with two of each autosome, ``sex_chromosomes`` (e.g. ``"XY"``) and
    optionally a third copy of autosome ``extra``."""
    if not re.fullmatch(r"X+Y?|X*Y", sex_chromosomes):
        raise UserError(f"invalid sex chromosomes {sex_chromosomes!r}")
    chromosomes: list[str] = []
    for name in AUTOSOMES:
        chromosomes += [name] * (3 if name == extra else 2)
    chromosomes += sorted(sex_chromosomes)  # "X" < "Y"
    total = len(chromosomes)
    name = f"{total},{sex_chromosomes}" + (f",+{extra}" if extra else "")
    sex = "male" if "Y" in sex_chromosomes else "female"
    return Karyotype(name, sex, tuple(chromosomes))


def parse_karyotype(text: str) -> Karyotype:
    """Parse the karyotypes this generator makes: ``46,XX``, ``47,XY,+21``, ``45,X``, ``47,XXY``."""
    match = re.fullmatch(r"\s*(\d+)\s*,\s*([XY]+)\s*(?:,\s*\+\s*(\d+))?\s*", text)
    if not match:
        raise UserError(f"cannot parse karyotype {text!r} (expected e.g. 46,XY or 47,XX,+21)")
    extra = match.group(3)
    if extra is not None and extra not in AUTOSOMES:
        raise UserError(f"karyotype {text!r}: no autosome {extra}")
    karyotype = make_karyotype(match.group(2), extra)
    if int(match.group(1)) != len(karyotype.chromosomes):
        raise UserError(
            f"karyotype {text!r}: the count {match.group(1)} does not match "
            f"{len(karyotype.chromosomes)} chromosomes"
        )
    return karyotype


def sample_karyotype(rng: np.random.Generator, abnormal_rate: float) -> Karyotype:
    """Draw a karyotype: normal XX/XY half and half, else an aneuploidy (see module doc)."""
    if rng.random() >= abnormal_rate:
        return make_karyotype("XX" if rng.random() < 0.5 else "XY")
    kinds = [f"+{n}" for n in TRISOMIES] + ["45,X", "47,XXY"]
    kind = kinds[int(rng.integers(len(kinds)))]
    if kind == "45,X":
        return make_karyotype("X")
    if kind == "47,XXY":
        return make_karyotype("XXY")
    return make_karyotype("XX" if rng.random() < 0.5 else "XY", kind[1:])


def assign_labels(
    chromosomes: Sequence[str],
    centres_x: Sequence[float],
    rng: np.random.Generator,
    exception_rate: float,
) -> list[str]:
    """Class labels for chromosomes drawn with box centres ``centres_x`` (rules in module doc)."""
    order = np.argsort(np.asarray(centres_x, dtype=np.float64), kind="stable")
    labels = [""] * len(chromosomes)
    seen: set[str] = set()
    for i in order:
        name = chromosomes[i]
        if name == "Y":
            labels[i] = "Y"
        else:
            labels[i] = f"{name}-r" if name in seen else f"{name}-l"
            seen.add(name)
    if exception_rate > 0 and rng.random() < exception_rate:
        candidates = [i for i, name in enumerate(chromosomes) if name in EXCEPTION_CHROMOSOMES]
        if candidates:
            pick = candidates[int(rng.integers(len(candidates)))]
            labels[pick] = f"{chromosomes[pick]}-?"
    return labels
