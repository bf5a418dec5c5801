"""The one place where a command first imports TensorFlow (:func:`start_tensorflow`).

Every command parses its flags before TensorFlow is imported, so ``--help`` and a bad flag answer at
once; the command then calls :func:`start_tensorflow`. It hides TensorFlow's C++ start-up
chatter below warnings (``TF_CPP_MIN_LOG_LEVEL=2`` unless the user set it) and, on a machine without
an NVIDIA driver, the lines of TensorFlow's CUDA probing, which that setting does not reach
(``Could not find cuda drivers``, ``failed call to cuInit``), and TensorFlow 2.21's oneDNN notice,
which it also writes before reading that setting: a new user reads them as "something is broken"
when nothing is. Every other line TensorFlow writes during its start passes through. On a
machine with a driver nothing is filtered, so GPU users keep every message about their devices.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from typing import Iterator, Sequence

#: Start-up lines meaningless on a machine without an NVIDIA driver: CUDA probing, and the oneDNN notice.
START_UP_NOISE = (
    "All log messages before absl::InitializeLog() is called are written to STDERR",
    "cudart_stub.cc",
    "failed call to cuInit",
    "Unable to register cuDNN factory",
    "Unable to register cuFFT factory",
    "Unable to register cuBLAS factory",
    "computation_placer.cc",
    "TF-TRT Warning: Could not find TensorRT",
    # An info line that TF_CPP_MIN_LOG_LEVEL=2 is meant to hide; TensorFlow 2.21 logs it before the
    # setting is read, once per import of its C++ core.
    "oneDNN custom operations are on",
)

#: Files that exist when an NVIDIA driver is installed.
NVIDIA_DRIVER_FILES = ("/proc/driver/nvidia/version", "/dev/nvidiactl", "/dev/nvidia0")


def has_nvidia_driver() -> bool:
    """Whether this machine has an NVIDIA driver (so CUDA probing means something)."""
    return any(os.path.exists(path) for path in NVIDIA_DRIVER_FILES)


@contextlib.contextmanager
def stderr_without(fragments: Sequence[str]) -> Iterator[None]:
    """Capture file descriptor 2 (C++ libraries write there directly) for the ``with`` block, then
    write what was captured back to stderr, less the lines containing any of ``fragments``."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode("utf-8", errors="replace")
            kept = [line for line in text.splitlines(keepends=True) if not any(f in line for f in fragments)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


def start_tensorflow() -> None:
    """Import TensorFlow and find its devices, without the start-up noise described above."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules or has_nvidia_driver():
        import tensorflow  # noqa: F401
        return
    with stderr_without(START_UP_NOISE):
        import tensorflow as tf

        tf.config.list_physical_devices()
