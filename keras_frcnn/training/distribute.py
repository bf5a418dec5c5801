"""Scaling out with TensorFlow's own engine: ``tf.distribute`` strategies, mixed precision, XLA.

Strategies (``train_frcnn.py --distribute``):

``none``
    ``tf.distribute``'s default strategy: one device, ``model.fit``.
``mirrored``
    :class:`tf.distribute.MirroredStrategy` over the GPUs of this machine (or, with
    ``--virtual-devices N`` and no GPU, over N logical CPU devices), ``model.fit``.
``multiworker``
    :class:`tf.distribute.MultiWorkerMirroredStrategy` configured from ``TF_CONFIG``; Keras 3's
    ``fit`` does not run under it (keras-team/keras#20585), so :mod:`keras_frcnn.training.loop` drives
    it with its own loop around the *same* step function (:meth:`FasterRCNN.train_step_fn`).
``auto``
    ``mirrored`` when more than one GPU (or more than one ``--virtual-devices``) is visible,
    else ``none``.

``--batch-size`` is per replica; a step consumes ``batch_size x num_replicas_in_sync`` images.
Each replica's loss is its images' mean divided by the number of replicas, so the all-reduced
(summed) gradient is the gradient of the mean over the global batch: N replicas on a global
batch make the same update as one replica on the whole batch.

Mixed precision (``--mixed-precision``): ``mixed_float16`` with dynamic loss scaling on GPUs,
``mixed_bfloat16`` on CPUs (no loss scaling needed: bfloat16 has float32's exponent range).
Variables stay float32; the RPN and detection outputs, the losses and the box arithmetic run in
float32 (:class:`~keras_frcnn.model.faster_rcnn.FasterRCNN` pins those layers to float32).

Trying it without GPUs: :func:`configure_virtual_devices` splits the CPU into N logical devices.
It must run before TensorFlow initialises its devices (before the first op), which is why the
tests run distributed training in subprocesses.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from typing import Iterator

from keras_frcnn.errors import OptionError, UserError

STRATEGIES = ("auto", "none", "mirrored", "multiworker")
LOOPS = ("auto", "fit", "custom")  # training loop: auto = fit, except the custom loop under multiworker


# ----------------------------------------------------------------------------- TF_CONFIG
@dataclass(frozen=True)
class ClusterRole:
    """This process's place in a ``TF_CONFIG`` cluster (``task_type`` None outside a cluster)."""

    task_type: str | None = None
    task_id: int = 0
    num_workers: int = 1
    has_chief: bool = False  # the cluster has a "chief" task (else worker 0 is the chief)

    @property
    def is_chief(self) -> bool:
        """The chief writes checkpoints, logs and plots: task ``chief``, else ``worker`` 0."""
        if self.task_type is None or self.task_type == "chief":
            return True
        return self.task_type == "worker" and self.task_id == 0 and not self.has_chief


def cluster_role(tf_config: str | dict | None = None) -> ClusterRole:
    """Parse ``TF_CONFIG`` (default: the environment variable) into a :class:`ClusterRole`."""
    if tf_config is None:
        tf_config = os.environ.get("TF_CONFIG", "")
    if isinstance(tf_config, str):
        if not tf_config.strip():
            return ClusterRole()
        try:
            tf_config = json.loads(tf_config)
        except json.JSONDecodeError as err:
            raise UserError(f"TF_CONFIG is not valid JSON ({err.msg})") from None
    cluster = tf_config.get("cluster") or {}
    task = tf_config.get("task") or {}
    if not cluster or "type" not in task:
        return ClusterRole()
    workers = len(cluster.get("worker", [])) + len(cluster.get("chief", []))
    return ClusterRole(task_type=str(task["type"]), task_id=int(task.get("index", 0)), num_workers=max(workers, 1),
                       has_chief=bool(cluster.get("chief")))


def check_tf_config() -> ClusterRole:
    """The role from ``TF_CONFIG``, or a clear error when ``--distribute multiworker`` lacks it."""
    role = cluster_role()
    if role.task_type is None:
        raise OptionError("{0} multiworker needs TF_CONFIG, e.g. TF_CONFIG={example} (see the README, "
                          "'Scaling out')", "distribute", example='\'{"cluster": {"worker": ["host1:12345", '
                          '"host2:12345"]}, "task": {"type": "worker", "index": 0}}\'')
    if role.task_type not in ("chief", "worker"):
        raise UserError(f"TF_CONFIG task type {role.task_type!r}: MultiWorkerMirroredStrategy has only "
                        "'chief' and 'worker' tasks")
    return role


# ----------------------------------------------------------------------------- devices
def configure_virtual_devices(count: int) -> None:
    """Split the first CPU into ``count`` logical devices (a laptop's stand-in for GPUs).

    Must be called before TensorFlow initialises its devices; calling it again with the same
    count is harmless. ``count`` <= 1 leaves the devices alone.
    """
    if count is None or count <= 1:
        return
    import tensorflow as tf

    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError:
        have = len(tf.config.list_logical_devices("CPU"))
        if have != count:
            raise OptionError("{0} {count}: TensorFlow already started with {have} CPU device(s); virtual devices "
                              "must be set before the first TensorFlow operation", "virtual_devices", count=count,
                              have=have) from None


def gpu_count() -> int:
    import tensorflow as tf

    return len(tf.config.list_physical_devices("GPU"))


_STRATEGIES: dict = {}  # one strategy per process and setting (a multi-worker one can exist once)


def make_strategy(name: str = "auto", virtual_devices: int = 0):
    """The ``tf.distribute.Strategy`` for ``--distribute name`` (see the module docstring).

    Create it at program start-up, before other TensorFlow operations: MultiWorkerMirroredStrategy
    configures the collective ops and starts this worker's server, and virtual devices need the
    runtime not yet initialised. Asked again with the same settings (e.g. by a study training
    several runs in one process), it returns the same strategy.
    """
    if name not in STRATEGIES:
        raise OptionError("{0} must be one of {choices}, not {name!r}", "distribute", choices=", ".join(STRATEGIES),
                          name=name)
    key = (name, int(virtual_devices or 0))
    if key not in _STRATEGIES:
        _STRATEGIES[key] = _new_strategy(name, int(virtual_devices or 0))
    return _STRATEGIES[key]


def _new_strategy(name: str, virtual_devices: int):
    if name == "multiworker":
        check_tf_config()
        import tensorflow as tf

        communication = tf.distribute.experimental.CommunicationImplementation
        implementation = communication.NCCL if gpu_count() else communication.RING
        options = tf.distribute.experimental.CommunicationOptions(implementation=implementation)
        try:
            return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
        except RuntimeError as err:
            raise UserError(f"cannot start MultiWorkerMirroredStrategy ({str(err).splitlines()[0]}); it must be "
                            "created before any other TensorFlow operation") from None
    configure_virtual_devices(virtual_devices)
    import tensorflow as tf

    if name == "none":
        return tf.distribute.get_strategy()
    gpus = tf.config.list_logical_devices("GPU")
    if gpus:
        devices = [d.name for d in gpus]
    else:
        devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    if name == "auto" and len(devices) < 2:
        return tf.distribute.get_strategy()
    cross_device_ops = None if gpus else tf.distribute.ReductionToOneDevice(reduce_to_device=devices[0])
    return tf.distribute.MirroredStrategy(devices=devices, cross_device_ops=cross_device_ops)


def strategy_name(strategy) -> str:
    """``none``, ``mirrored`` or ``multiworker`` for a strategy object."""
    import tensorflow as tf

    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return "multiworker"
    if isinstance(strategy, tf.distribute.MirroredStrategy):
        return "mirrored"
    return "none"


def is_multi_worker(strategy) -> bool:
    return strategy_name(strategy) == "multiworker"


def is_chief(strategy) -> bool:
    """Whether this process writes the run's files (always, outside a multi-worker cluster)."""
    if not is_multi_worker(strategy):
        return True
    resolver = strategy.cluster_resolver
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type in (None, "chief"):
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "worker" and task_id == 0 and not has_chief


def describe(strategy) -> str:
    """One line: the strategy, its replicas and, for multi-worker, this worker."""
    name = strategy_name(strategy)
    text = f"{name} strategy, {strategy.num_replicas_in_sync} replica(s)"
    if name == "multiworker":
        resolver = strategy.cluster_resolver
        text += f", this is {resolver.task_type} {resolver.task_id}" + (" (chief)" if is_chief(strategy) else "")
    return text


# ----------------------------------------------------------------------------- precision
def mixed_precision_policy(enabled: bool, gpus: int | None = None) -> str:
    """``float32``, or the mixed policy for ``gpus`` GPUs (default: this machine's): ``mixed_float16``
    with GPUs (the optimizer then scales the loss), else ``mixed_bfloat16`` (float32's exponent range:
    no loss scaling)."""
    if not enabled:
        return "float32"
    return "mixed_float16" if (gpu_count() if gpus is None else gpus) else "mixed_bfloat16"


PRECISIONS = ("auto", "float32", "mixed")


def resolve_precision(choice: str, gpus: int | None = None, cpu: dict | None = None) -> str:
    """``float32`` or ``mixed`` for a ``--precision`` choice; ``auto`` is ``mixed`` (bfloat16) on a CPU
    that computes bfloat16 natively (AVX512-BF16 or AMX, :func:`keras_frcnn.cpu.has_native_bfloat16`)
    and no GPU, where it trains about twice as fast to the same accuracy, else ``float32`` (elsewhere
    bfloat16 is emulated and slower; on GPUs mixed float16 is one flag away but not measured here)."""
    from keras_frcnn.cpu import has_native_bfloat16

    if choice not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {choice!r}")
    if choice != "auto":
        return choice
    gpus = gpu_count() if gpus is None else gpus
    return "mixed" if not gpus and has_native_bfloat16(cpu) else "float32"


@contextlib.contextmanager
def dtype_policy(name: str) -> Iterator[None]:
    """Build (or load) models under Keras's global dtype policy ``name``; restores the old one."""
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
