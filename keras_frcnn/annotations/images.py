"""Reading the image of an annotation record as 8-bit RGB.

Every image, whatever its file type, becomes a ``uint8`` ``[H, W, 3]`` RGB array: grey images
are repeated over the three channels, an alpha channel is dropped, 16-bit images keep their
high byte (``value >> 8``, as ``cv2.imread`` does), float images are taken as ``[0, 1]``.
EXIF orientation is ignored, as TensorFlow's decoders (the training pipeline) ignore it, so
sizes and pixels agree with what the model is trained on.
"""

from __future__ import annotations

import os
from typing import Protocol

import cv2
import numpy as np

from keras_frcnn.errors import UserError

# Keep the bit depth and the colour type; drops an alpha channel; no EXIF rotation.
_DECODE_FLAGS = cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR | cv2.IMREAD_IGNORE_ORIENTATION


class ImageSource(Protocol):
    """Anything naming an image: an :class:`ImageRecord` or a parsed annotation."""

    path: str
    image_bytes: bytes | None


class ImageReadError(UserError):
    """An image that is missing or cannot be decoded; ``str`` is ``path: cannot read image (reason)``."""

    def __init__(self, path: str, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: cannot read image ({reason})")


def load_image(record: ImageSource) -> np.ndarray:
    """The record's image as a ``uint8`` ``[H, W, 3]`` RGB array (embedded bytes first, else the file)."""
    return to_rgb8(_decode(record), record.path)


def read_image_size(record: ImageSource) -> tuple[int, int]:
    """``(height, width)`` of the record's image (decodes it; cache the result per image)."""
    height, width = _decode(record).shape[:2]
    return int(height), int(width)


def decode_image(data: bytes, name: str) -> np.ndarray:
    """Encoded image bytes -> ``uint8`` RGB ``[H, W, 3]``; ``name`` is used in error messages."""
    return to_rgb8(_decode_bytes(data, name), name)


def to_rgb8(image: np.ndarray, name: str = "image") -> np.ndarray:
    """A decoded OpenCV image (grey, BGR or BGRA; 8-bit, 16-bit or float) -> ``uint8`` RGB."""
    image = _to_uint8(image, name)
    if image.ndim == 2:
        return np.ascontiguousarray(np.repeat(image[:, :, None], 3, axis=2))
    channels = image.shape[2]
    if channels == 1:
        return np.ascontiguousarray(np.repeat(image, 3, axis=2))
    if channels == 2:  # grey + alpha
        return np.ascontiguousarray(np.repeat(image[:, :, :1], 3, axis=2))
    if channels in (3, 4):
        return np.ascontiguousarray(image[:, :, 2::-1])  # BGR(A) -> RGB
    raise ImageReadError(name, f"unsupported number of channels: {channels}")


def image_extension(data: bytes) -> str:
    """The file extension of encoded image bytes, from their signature (``.png``, ``.jpg``, ...; ``.img``
    if unknown)."""
    signatures = {b"\x89PNG": ".png", b"\xff\xd8\xff": ".jpg", b"BM": ".bmp", b"GIF8": ".gif",
                  b"II*\x00": ".tif", b"MM\x00*": ".tif"}
    return next((ext for head, ext in signatures.items() if data.startswith(head)), ".img")


def resolve_image_path(name: str, base_dirs: list[str]) -> str:
    """``name`` if absolute, else the first of ``base_dir/name`` that exists (the first one if none)."""
    if os.path.isabs(name):
        return os.path.normpath(name)
    candidates = [os.path.normpath(os.path.join(base, name)) for base in base_dirs]
    for candidate in candidates:
        if os.path.isfile(candidate):
            return candidate
    return candidates[0]


def _decode(record: ImageSource) -> np.ndarray:
    if record.image_bytes is not None:
        return _decode_bytes(record.image_bytes, record.path)
    try:
        with open(record.path, "rb") as handle:
            data = handle.read()
    except OSError as err:
        raise ImageReadError(record.path, err.strerror or type(err).__name__) from None
    return _decode_bytes(data, record.path)


def _decode_bytes(data: bytes, name: str) -> np.ndarray:
    if not data:
        raise ImageReadError(name, "empty file")
    try:
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), _DECODE_FLAGS)
    except cv2.error:
        raise ImageReadError(name, "OpenCV could not decode it") from None
    if image is None or image.size == 0:
        raise ImageReadError(name, "not an image OpenCV can decode, or a corrupt one")
    return image


def _to_uint8(image: np.ndarray, name: str) -> np.ndarray:
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return (image >> 8).astype(np.uint8)
    if image.dtype in (np.float32, np.float64):
        return (np.clip(np.nan_to_num(image), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    raise ImageReadError(name, f"unsupported pixel type {image.dtype}")
