"""How many images one model call takes when detecting on a folder (``--batch-size auto``).

Measured on a CPU (``benchmarks/bench_folder.py``, 100 spreads at 600 px, Intel Xeon with AMX):
two images per call gave VGG16 1.45x the images per second of one (oneDNN runs its convolutions
faster at batch 2), ResNet50 1.01x and the tiny backbone 0.57x. So ``auto`` is 2 for VGG16 on a
CPU and 1 otherwise; on GPUs 1, as detectron2 and mmdetection evaluate (not measured here: no GPU).
"""

from __future__ import annotations

AUTO = "auto"


def auto_batch_size(network: str, gpus: int) -> int:
    """Images per model call for ``network`` on a machine with ``gpus`` GPUs (module docstring)."""
    if gpus:
        return 1
    return 2 if network == "vgg16" else 1


def resolve_batch_size(choice: int | str, network: str) -> int:
    """``choice`` itself, or for ``"auto"`` the batch size of :func:`auto_batch_size` on this machine."""
    from keras_frcnn.training.distribute import gpu_count

    return int(choice) if choice != AUTO else auto_batch_size(network, gpu_count())
