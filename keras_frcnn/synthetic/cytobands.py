"""Human cytoband tables: band positions, stains, centromeres and drawn relative lengths.

Bands come from the UCSC-style BED files packaged with ``pyryotype``
(``pyryotype/static/cytobands_hg38.bed``), read through :mod:`importlib.resources`. That hg38
file has no chrX/chrY, so X and Y are taken from the T2T-CHM13 file shipped beside it
(``cytobands_chm13.bed``); band positions are used only as fractions of each chromosome's
length, so mixing the two assemblies is harmless.

The *drawn* length of a chromosome is not its length in base pairs (hg38 puts chr20 at
64.4 Mb and chr19 at 58.6 Mb, yet 19 looks the longer one in a metaphase) but its ISCN
relative length: :func:`relative_length`, percentages of the haploid autosome set plus X,
from the classic measurements of banded metaphases. Within a chromosome the band
coordinates are rescaled to ``[0, 1]`` from the p telomere.
"""

from __future__ import annotations

import functools
import importlib.resources
import types
from dataclasses import dataclass

from keras_frcnn.errors import UserError

CHROMOSOMES: tuple[str, ...] = tuple(str(n) for n in range(1, 23)) + ("X", "Y")

# ISCN relative lengths (% of the haploid autosomes + X; Y given on the same scale). Values
# are the well-known published averages for banded metaphase chromosomes: 10, 11 and 12 are
# about equal, 19 is longer than 20 and 21 is the shortest autosome.
_ISCN_RELATIVE_LENGTH = types.MappingProxyType(
    {
        "1": 8.44, "2": 8.02, "3": 6.83, "4": 6.30, "5": 6.08, "6": 5.90, "7": 5.36,
        "8": 4.93, "9": 4.80, "10": 4.59, "11": 4.61, "12": 4.66, "13": 3.74, "14": 3.56,
        "15": 3.46, "16": 3.36, "17": 3.25, "18": 2.93, "19": 2.67, "20": 2.56, "21": 1.90,
        "22": 2.04, "X": 5.12, "Y": 2.15,
    }
)  # fmt: skip

# Giemsa stain -> darkness in [0, 1] (gneg light < gpos25 < ... < gpos100 dark).
STAIN_DARKNESS = types.MappingProxyType(
    {
        "gneg": 0.0,
        "gpos25": 0.3,
        "gpos50": 0.55,
        "gpos75": 0.78,
        "gpos100": 1.0,
        "acen": 0.35,
        "gvar": 0.8,
        "stalk": 0.1,
    }
)


@dataclass(frozen=True)
class Band:
    """One cytoband: ``start``/``end`` as fractions of the chromosome from the p telomere."""

    name: str
    start: float
    end: float
    stain: str


@dataclass(frozen=True, eq=False)
class ChromosomeBands:
    """The band map of one chromosome (``name`` is ``"1"``..``"22"``, ``"X"`` or ``"Y"``).

    Compared and hashed by identity (cheap cache keys; :func:`load_bands` makes each once).
    """

    name: str
    length_bp: int
    bands: tuple[Band, ...]
    centromere: float  # fraction from the p telomere (boundary of the two acen bands)
    acrocentric: bool  # has a satellite stalk on the p arm (13, 14, 15, 21, 22)

    @property
    def relative_length(self) -> float:
        return relative_length(self.name)

    @property
    def ends(self) -> tuple[float, ...]:
        return tuple(band.end for band in self.bands)


def relative_length(name: str) -> float:
    """ISCN relative length of chromosome ``name`` (percent; chr1 = 8.44)."""
    try:
        return _ISCN_RELATIVE_LENGTH[name]
    except KeyError:
        raise KeyError(f"unknown chromosome {name!r}") from None


def _read_bed(filename: str) -> dict[str, list[tuple[int, int, str, str]]]:
    try:
        resource = importlib.resources.files("pyryotype").joinpath("static", filename)
        text = resource.read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError) as err:
        raise UserError(
            f"cannot read the cytoband table pyryotype/static/{filename} ({err}); "
            "install the 'pyryotype' package"
        ) from None
    rows: dict[str, list[tuple[int, int, str, str]]] = {}
    for line in text.splitlines():
        fields = line.split("\t")
        if len(fields) < 5 or not fields[0].startswith("chr"):
            continue
        rows.setdefault(fields[0][3:], []).append(
            (int(fields[1]), int(fields[2]), fields[3], fields[4].strip())
        )
    return rows


def _build(name: str, rows: list[tuple[int, int, str, str]]) -> ChromosomeBands:
    rows = sorted(rows)
    length = rows[-1][1]
    bands = tuple(Band(band, start / length, end / length, stain) for start, end, band, stain in rows)
    acen = [b for b in bands if b.stain == "acen"]
    p_acen = [b for b in acen if b.name.startswith("p")]
    centromere = p_acen[-1].end if p_acen else (acen[0].start + acen[-1].end) / 2
    acrocentric = any(band.stain == "stalk" for band in bands)
    return ChromosomeBands(name, length, bands, centromere, acrocentric)


@functools.lru_cache(maxsize=None)
def load_bands() -> types.MappingProxyType:
    """All 24 chromosomes' band maps, ``{"1": ChromosomeBands, ..., "X": ..., "Y": ...}``."""
    hg38 = _read_bed("cytobands_hg38.bed")
    missing = [name for name in CHROMOSOMES if name not in hg38]
    fallback = _read_bed("cytobands_chm13.bed") if missing else {}
    table = {}
    for name in CHROMOSOMES:
        rows = hg38.get(name) or fallback.get(name)
        if not rows:
            raise UserError(f"the packaged cytoband tables have no chr{name}")
        table[name] = _build(name, rows)
    return types.MappingProxyType(table)
