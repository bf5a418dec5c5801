"""The one record type every annotation reader produces."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, eq=False)
class ImageRecord:
    """One image and its ground-truth boxes.

    ``boxes`` is float32 ``[N, 4]`` in pixels, ``x1, y1, x2, y2`` (continuous coordinates, no +1),
    ``labels`` the N class names, ``difficult`` a bool ``[N]`` (Pascal VOC; ignored by the
    metrics). ``image_bytes`` holds an encoded image embedded in the annotation (LabelMe
    ``imageData``); otherwise the image is read from ``path``. ``width``/``height`` are the image
    size when known (``None`` otherwise).
    """

    path: str
    boxes: np.ndarray
    labels: tuple[str, ...]
    difficult: np.ndarray = field(default=None)  # type: ignore[assignment]
    width: int | None = None
    height: int | None = None
    image_bytes: bytes | None = field(default=None, repr=False)

    def __post_init__(self):
        boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "labels", tuple(self.labels))
        difficult = self.difficult
        if difficult is None:
            difficult = np.zeros(len(boxes), dtype=bool)
        object.__setattr__(self, "difficult", np.asarray(difficult, dtype=bool).reshape(-1))
        if not (len(self.boxes) == len(self.labels) == len(self.difficult)):
            raise ValueError(
                f"{self.path}: {len(self.boxes)} boxes, {len(self.labels)} labels, "
                f"{len(self.difficult)} difficult flags"
            )

    @property
    def num_boxes(self) -> int:
        return len(self.labels)
