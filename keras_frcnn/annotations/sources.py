"""Which source image a file was made from, so that copies of one source stay on one side of a split.

Dataset exports (Roboflow among them) save every augmented copy of an upload as
``<source>_<ext>.rf.<hash>.<ext>``: ``karyotype-10_bmp_jpg.rf.20c5....jpg`` and
``karyotype-10_bmp_jpg.rf.4fb4....jpg`` are two copies of ``karyotype-10``. A split by file would
put copies of one karyogram in training and validation alike, and the validation score would leak.
:func:`source_of` names the source; files whose names do not follow that pattern are their own source.
"""

from __future__ import annotations

import os
import re

_EXPORT_COPY = re.compile(r"^(?P<source>.+?)(?:_(?:jpe?g|png|bmp|tiff?|webp|gif))*\.rf\.[0-9a-f]{8,}$", re.IGNORECASE)


def source_of(path: str) -> str:
    """The source image of ``path``: ``.../karyotype-10_bmp_jpg.rf.<hash>.jpg`` -> ``karyotype-10``;
    otherwise the path itself. The folder is left out for export copies (an export may place copies
    of one source in its train/ and valid/ folders alike)."""
    stem = os.path.splitext(os.path.basename(path))[0]
    found = _EXPORT_COPY.match(stem)
    return found.group("source") if found else path
