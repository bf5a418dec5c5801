"""The speed benchmark's JSON: every documented key, overheads as the ratios of its own timings."""

import json
import sys
from pathlib import Path

from keras_frcnn.cli.benchmark import main


def test_speed_benchmark_reports_its_timings_and_ratios(tmp_path, capsys):
    out = tmp_path / "speed.json"
    code = main(["--network", "tiny", "--im-size", "128", "--runs", "1", "--num-rois", "8", "--post-nms-test", "16",
                 "--pre-nms-test", "64", "--variants", "mixed", "constant_weights", "--set", "tiny_filters=[4,4,8,8]",
                 "--set", "head_units=16", "--set", "rpn_head_channels=8", "--json", str(out)])
    assert code == 0
    result = json.loads(out.read_text())
    assert result == json.loads(capsys.readouterr().out)
    for key in ("backbone_forward_s", "dense_forward_s", "detect_s", "backbone_train_step_s", "dense_train_step_s",
                "train_step_s", "train_step_mixed_s", "detect_mixed_s", "dense_forward_constant_weights_s",
                "detect_constant_weights_s", "peak_rss_mb", "train_peak_rss_mb", "detect_peak_rss_mb"):
        assert result[key] > 0, key
    # each phase in a fresh process: neither holds what the whole run built
    assert result["train_peak_rss_mb"] < result["peak_rss_mb"] and result["detect_peak_rss_mb"] < result["peak_rss_mb"]
    assert "train_step_xla_s" not in result  # only the chosen variants
    assert result["num_rois"] == 8 and result["post_nms_top_n_test"] == 16 and result["pre_nms_top_n_test"] == 64
    assert result["detect_overhead"] == round(result["detect_s"] / result["dense_forward_s"], 3)
    assert result["train_overhead"] == round(result["train_step_s"] / result["dense_train_step_s"], 3)
    assert result["detect_overhead_constant_weights"] == round(
        result["detect_constant_weights_s"] / result["dense_forward_constant_weights_s"], 3)
    assert result["train_speedup_mixed"] == round(result["train_step_s"] / result["train_step_mixed_s"], 3)


def test_without_variants_the_phase_memory_is_still_reported(tmp_path):
    out = tmp_path / "speed.json"
    assert main(["--network", "tiny", "--im-size", "96", "--runs", "1", "--no-variants", "--set",
                 "tiny_filters=[4,4,8,8]", "--set", "head_units=16", "--set", "rpn_head_channels=8",
                 "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["train_peak_rss_mb"] > 0 and result["detect_peak_rss_mb"] > 0
    assert "detect_constant_weights_s" not in result and "train_step_mixed_s" not in result


def test_unknown_override_is_one_clear_line(capsys):
    assert main(["--network", "tiny", "--set", "anchor_scale=[8]"]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown config keys: anchor_scale" in err and len(err.splitlines()) == 1


def test_keras_frcnn_comparison_takes_medians_over_runs():
    benchmarks = str(Path(__file__).resolve().parents[1] / "benchmarks")
    sys.path.insert(0, benchmarks)
    try:
        from speed_vs_keras_frcnn import TIMINGS, summarise
    finally:
        sys.path.remove(benchmarks)

    runs = [{key: value for key in TIMINGS} | {"overrides": {}} for value in (1.0, 3.0, 2.0)]
    runs[0]["detect_constant_weights_s"] = 1.5
    runs[2]["detect_constant_weights_s"] = 1.4  # 1.5, 3.0, 1.4 over the runs: the median is 1.5
    result = summarise("vgg16", runs)
    assert result["medians"]["train_step_s"] == 2.0 and result["medians"]["detect_constant_weights_s"] == 1.5
    assert result["speedup_over_keras_frcnn"] == {"train": 4.55, "detect": 1.05, "detect_constant_weights": 1.4}
    assert result["detect_overhead"] == 1.0 and result["detect_overhead_constant_weights"] == 0.75
    assert [run["train_step_s"] for run in result["runs"]] == [1.0, 3.0, 2.0]


def test_peak_memory_reports_the_median_of_fresh_processes(monkeypatch):
    from keras_frcnn import benchmark

    peaks = {"train": iter([900.0, 700.0, 800.0]), "detect": iter([300.0, 500.0, 400.0])}
    calls = []

    def fake_process(function, *args):
        calls.append(function.__name__)
        if function is benchmark.save_untrained_model:
            assert args[-1] == "mixed_bfloat16"  # built under the policy
            return args[1]
        assert args[-2:] == ("mixed_bfloat16", True)  # each phase with the policy and the detector's kernels
        return next(peaks[args[1]])

    monkeypatch.setattr(benchmark, "_in_fresh_process", fake_process)
    result = benchmark.peak_memory({"network": "tiny"}, repeats=3, policy="mixed_bfloat16", constant_weights=True)
    assert result == {"train_peak_rss_mb": 800.0, "detect_peak_rss_mb": 400.0,
                      "train_peak_rss_mb_runs": [900.0, 700.0, 800.0], "detect_peak_rss_mb_runs": [300.0, 500.0, 400.0]}
    assert calls == ["save_untrained_model"] + ["phase_peak_rss"] * 6  # one model, each phase a process per run
