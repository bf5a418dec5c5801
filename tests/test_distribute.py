"""tf.distribute: MirroredStrategy on logical CPU devices, MultiWorkerMirroredStrategy with two
worker processes on 127.0.0.1, the shared step and commit of ``fit`` and the distributed loop.

Logical devices and multi-worker servers must be set up before TensorFlow starts, so every test
that needs them runs in a subprocess of its own; this process keeps its single CPU device.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from keras_frcnn.annotations import read_annotations
from keras_frcnn.training.distribute import STRATEGIES, cluster_role, make_strategy
from keras_frcnn.errors import UserError
from keras_frcnn.training.runs import load_model
from keras_frcnn.training.loop import TrainOptions, split_records, train
from model_fixtures import tiny_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(REPO, "tests")
TIMEOUT = 420  # seconds for any subprocess (the whole suite shares 2 CPU cores)


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env.update(PYTHONPATH=os.pathsep.join([REPO, TESTS]), TF_CPP_MIN_LOG_LEVEL="3", **extra)
    return env


def _python(script: str, *args, timeout: int = TIMEOUT, **env) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-c", script, *map(str, args)], env=_env(**env), capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _train(dataset, run_dir, num_epochs, resume=False, **options):
    data = read_annotations(dataset)
    train_records, val_records = split_records(data.records, 0.25, seed=0)
    config = tiny_config(class_names=data.class_map.names)
    options = TrainOptions(**{"optimizer": "adam", "num_epochs": num_epochs, "epoch_length": 2, "verbose": 0, **options})
    return train(str(run_dir), config=config, options=options, class_map=data.class_map, train_records=train_records,
                 val_records=val_records, resume=resume, print_fn=lambda line: None)


# ----------------------------------------------------------------------------- in this process
def test_cluster_role_from_tf_config():
    cluster = {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}
    assert cluster_role("").task_type is None and cluster_role("").is_chief
    first = cluster_role(json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 0}}))
    second = cluster_role({"cluster": cluster, "task": {"type": "worker", "index": 1}})
    assert first.is_chief and not second.is_chief and first.num_workers == second.num_workers == 2
    with_chief = {"cluster": {**cluster, "chief": ["127.0.0.1:3"]}, "task": {"type": "worker", "index": 0}}
    assert not cluster_role(with_chief).is_chief and cluster_role(with_chief).num_workers == 3
    assert cluster_role({**with_chief, "task": {"type": "chief", "index": 0}}).is_chief
    with pytest.raises(UserError, match="TF_CONFIG is not valid JSON"):
        cluster_role("{cluster")


def test_bad_settings_are_one_line_errors(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(UserError, match="needs TF_CONFIG"):
        make_strategy("multiworker")
    with pytest.raises(UserError, match="^distribute must be one of"):
        make_strategy("horovod")
    with pytest.raises(UserError, match="keras-team/keras#20585"):
        TrainOptions(distribute="multiworker", loop="fit").validate()
    with pytest.raises(UserError, match="^loop must be one of"):
        TrainOptions(loop="eager").validate()
    assert STRATEGIES == ("auto", "none", "mirrored", "multiworker")
    assert make_strategy("auto") is make_strategy("none")  # one CPU device here: the default strategy


def test_scaling_flags_reach_the_options():
    from keras_frcnn.cli.train import build_parser, scaling_options

    args = build_parser().parse_args(["--distribute", "mirrored", "--virtual-devices", "2", "--mixed-precision",
                                      "--jit-compile", "--loop", "custom"])
    assert scaling_options(args) == {"distribute": "mirrored", "virtual_devices": 2, "mixed_precision": True,
                                     "jit_compile": True, "loop": "custom"}
    assert scaling_options(build_parser().parse_args([])) == {}  # on --resume: the run's own settings
    assert scaling_options(build_parser().parse_args(["--no-mixed-precision"])) == {"mixed_precision": False}


def test_distributed_loop_matches_fit_and_resumes_across_loops(dataset, tmp_path):
    """The hand-written loop (what multi-worker training runs) and fit share the step and the
    epoch commit: the same history, weights and run files, and a run resumes from either."""
    from tensorflow.python.framework import config as framework_config

    framework_config.enable_op_determinism()
    try:
        fit = _train(dataset, tmp_path / "fit", num_epochs=2, loop="fit")
        _train(dataset, tmp_path / "custom", num_epochs=1, loop="custom")
        custom = _train(dataset, tmp_path / "custom", num_epochs=2, resume=True, loop="custom")
    finally:
        framework_config.disable_op_determinism()
    pd.testing.assert_frame_equal(fit.history.drop(columns="seconds"), custom.history.drop(columns="seconds"),
                                  rtol=1e-4)
    for a, b in zip(fit.model.weights, custom.model.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-5, err_msg=a.path)
    state = json.loads((tmp_path / "custom" / "state.json").read_text())
    assert state["iterations"] == 4 and state["images_seen"] == 4 and state["epoch"] == 2
    for result in (fit, custom):  # the result carries the committed state, resumed epochs included
        assert (result.epochs, result.iterations) == (2, 4)
    assert custom.train_seconds == pytest.approx(state["train_seconds"]) and custom.train_seconds > 0
    assert set(os.listdir(tmp_path / "custom")) >= {"best.keras", "last.keras", "history.csv", "loss_curve.png", "logs"}
    assert os.listdir(tmp_path / "custom" / "logs" / "train")  # TensorBoard scalars of the custom loop


# ----------------------------------------------------------------------------- MirroredStrategy
MIRRORED_STEP = textwrap.dedent("""
    import json, sys
    from keras_frcnn.training.distribute import make_strategy
    strategy = make_strategy("mirrored", virtual_devices=2)  # before any other TensorFlow op
    import keras, numpy as np, tensorflow as tf
    from keras_frcnn.model.faster_rcnn import build_model
    from model_fixtures import batch, tiny_config, two_scenes

    data = batch(two_scenes())  # a global batch of 2 images
    config = tiny_config()
    keras.utils.set_random_seed(0)
    reference = build_model(config, keras.optimizers.SGD(0.01))  # default strategy, one device
    start = reference.get_weights()
    reference.fit(tf.data.Dataset.from_tensors(data), epochs=1, verbose=0)

    def update(model):
        return [after - before for after, before in zip(model.get_weights(), start)]

    def mirrored_model():
        with strategy.scope():
            model = build_model(config, keras.optimizers.SGD(0.01))
        model.set_weights(start)
        return model

    fitted = mirrored_model()
    history = fitted.fit(tf.data.Dataset.from_tensors(data), epochs=1, verbose=0).history

    looped = mirrored_model()
    @tf.function
    def step(x):
        terms = strategy.run(looped.train_step_fn, args=(x,))
        return {k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None) for k, v in terms.items()}
    loop_terms = [step(x) for x in strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensors(data))][0]

    def distance(model):  # largest difference of the updates, relative to the largest update of the model
        # (relative to each layer's own largest update it would be ill-conditioned: some layers move
        # by ~1e-5 in one SGD step, where float round-off alone is a few percent)
        reference_updates = update(reference)
        scale = max(float(np.abs(b).max()) for b in reference_updates)
        return max(float(np.abs(a - b).max()) for a, b in zip(update(model), reference_updates)) / scale

    print(json.dumps({
        "replicas": strategy.num_replicas_in_sync,
        "variable_type": type(fitted.trainable_variables[0].value).__name__,
        "fit_distance": distance(fitted), "loop_distance": distance(looped),
        "smallest_update": min(float(np.abs(u).max()) for u in update(reference)),
        "fit_loss": history["loss"][0], "loop_loss": float(loop_terms["loss"]),
    }))
""")


def test_mirrored_step_on_two_logical_devices_equals_one_device():
    """One SGD step on a global batch of 2 images split over 2 replicas (1 image each) gives the
    same weights as the default strategy on both images, through fit and through the
    distributed loop. SGD, not Adam: a wrong loss normalisation (x2) would show in full."""
    result = json.loads(_python(MIRRORED_STEP).stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2 and result["variable_type"] == "MirroredVariable"
    assert result["smallest_update"] > 0
    assert result["fit_distance"] < 1e-3 and result["loop_distance"] < 1e-3, result
    assert result["fit_loss"] == pytest.approx(result["loop_loss"], rel=1e-5)


@pytest.mark.slow
def test_mirrored_training_run_and_resume_through_the_cli(dataset, tmp_path):
    run = tmp_path / "run"
    flags = [os.path.join(REPO, "train_frcnn.py"), "-p", str(dataset), "--output", str(run), "--epoch_length", "2",
             "--optimizer", "adam", "--quiet", "--network", "tiny", "--im-size", "128", "--set", "max_size=128",
             "--set", "tiny_filters=[8,16,32,32]", "--set", "head_units=32", "--set", "rpn_head_channels=16",
             "--set", "post_nms_top_n_train=32", "--set", "post_nms_top_n_test=32", "--set", "max_boxes=8", "-n", "16"]
    first = subprocess.run([sys.executable, *flags, "--num_epochs", "1", "--distribute", "mirrored",
                            "--virtual-devices", "2"], env=_env(), capture_output=True, text=True, timeout=TIMEOUT)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "mirrored strategy, 2 replica(s), global batch 2 (1 per replica)" in first.stdout
    second = subprocess.run([sys.executable, os.path.join(REPO, "train_frcnn.py"), "--resume", "--output", str(run),
                             "--num_epochs", "2", "--quiet"], env=_env(), capture_output=True, text=True, timeout=TIMEOUT)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resuming" in second.stdout and "mirrored strategy, 2 replica(s)" in second.stdout  # the run's own setting
    state = json.loads((run / "state.json").read_text())
    assert state["epoch"] == 2 and state["iterations"] == 4 and state["images_seen"] == 8
    assert list(pd.read_csv(run / "history.csv")["epoch"]) == [1, 2]
    config = json.loads((run / "config.json").read_text())["training"]
    assert config["distribute"] == "mirrored" and config["batch_size"] == 1 and config["virtual_devices"] == 2


# ----------------------------------------------------------------------------- MultiWorkerMirroredStrategy
WORKER = textwrap.dedent("""
    import sys
    import numpy as np
    from keras_frcnn.annotations import read_annotations
    from keras_frcnn.training.loop import TrainOptions, split_records, train
    from model_fixtures import tiny_config

    dataset, run_dir, num_epochs, resume, weights_out = sys.argv[1:]
    data = read_annotations(dataset)
    train_records, val_records = split_records(data.records, 0.25, seed=0)
    # SGD: its update is linear in the gradient, so one device and two workers agree to float
    # tolerance (Adam divides by the gradient's magnitude and amplifies round-off near zero).
    options = TrainOptions(optimizer="sgd", num_epochs=int(num_epochs), epoch_length=2, verbose=0,
                           distribute="multiworker")
    result = train(run_dir, config=tiny_config(class_names=data.class_map.names), options=options,
                   class_map=data.class_map, train_records=train_records, val_records=val_records,
                   resume=resume == "1", print_fn=lambda line: print(line, flush=True))
    np.savez(weights_out, *result.model.get_weights())
""")


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _run_workers(tmp_path, dataset, run_dirs, num_epochs, resume, tag) -> list[dict]:
    """Two MultiWorkerMirroredStrategy workers on 127.0.0.1; both are always reaped."""
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    processes, outputs = [], []
    try:
        for index, run_dir in enumerate(run_dirs):
            weights = tmp_path / f"{tag}_worker{index}.npz"
            tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
            log = open(tmp_path / f"{tag}_worker{index}.log", "w+")
            command = [sys.executable, "-c", WORKER, str(dataset), str(run_dir), str(num_epochs), "1" if resume else "0",
                       str(weights)]
            processes.append((subprocess.Popen(command, env=_env(TF_CONFIG=tf_config), stdout=log,
                                               stderr=subprocess.STDOUT, text=True), log, weights))
        for process, log, weights in processes:
            process.wait(timeout=TIMEOUT)
            log.seek(0)
            text = log.read()
            assert process.returncode == 0, text[-3000:]
            outputs.append({"log": text, "weights": np.load(weights)})
    finally:
        for process, log, _ in processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)
            log.close()
    return outputs


def _same_weights(a, b) -> bool:
    return len(a.files) == len(b.files) and all(np.array_equal(a[k], b[k]) for k in a.files)


@pytest.mark.slow
def test_multi_worker_training_two_workers_on_localhost(dataset, tmp_path):
    """Two workers x 1 image = one device x 2 images; identical weights on both workers; only the
    chief writes; the run resumes under the same strategy."""
    chief_run, worker_run = tmp_path / "run", tmp_path / "worker_run"
    first = _run_workers(tmp_path, dataset, [chief_run, worker_run], num_epochs=1, resume=False, tag="first")
    assert "multiworker strategy, 2 replica(s), this is worker 0 (chief), global batch 2" in first[0]["log"]
    assert "this is worker 1," in first[1]["log"] and "epoch 1:" not in first[1]["log"]
    assert _same_weights(first[0]["weights"], first[1]["weights"])
    assert not worker_run.exists()  # the non-chief wrote nothing
    assert os.listdir(chief_run / "checkpoints") == ["epoch_0001.keras"]
    chief_weights = load_model(str(chief_run / "last.keras")).get_weights()
    assert all(np.array_equal(w, first[0]["weights"][k]) for w, k in zip(chief_weights, first[0]["weights"].files))

    # The same global batch on one device (batch_size 2): the same losses and weights.
    single = _train(dataset, tmp_path / "single", num_epochs=1, batch_size=2, distribute="none", optimizer="sgd")
    distributed = pd.read_csv(chief_run / "history.csv")
    np.testing.assert_allclose(distributed[["loss", "rpn_cls", "rpn_reg", "head_cls", "head_reg"]].to_numpy(),
                               single.history[["loss", "rpn_cls", "rpn_reg", "head_cls", "head_reg"]].to_numpy(),
                               rtol=1e-4)
    for w, k in zip(single.model.get_weights(), first[0]["weights"].files):
        np.testing.assert_allclose(first[0]["weights"][k], w, rtol=1e-3, atol=1e-5)

    # Resume (shared run folder, as on a shared file system): both workers continue from epoch 1.
    second = _run_workers(tmp_path, dataset, [chief_run, chief_run], num_epochs=2, resume=True, tag="second")
    assert all("resuming" in out["log"] for out in second)
    assert _same_weights(second[0]["weights"], second[1]["weights"])
    state = json.loads((chief_run / "state.json").read_text())
    assert state["epoch"] == 2 and state["iterations"] == 4 and state["images_seen"] == 8
    assert os.listdir(chief_run / "checkpoints") == ["epoch_0002.keras"]
    assert list(pd.read_csv(chief_run / "history.csv")["epoch"]) == [1, 2]
