"""Latency bookkeeping: host parts per sample, GPU time beside them and never added to the total."""

from __future__ import annotations

import time

from pipelines.latency import Timer


def test_gpu_time_is_reported_per_component_and_not_added_to_the_total() -> None:
    timer = Timer()
    for gpu_ms in (1.0, 3.0):
        with timer.part("encoder"):
            time.sleep(0.005)
        timer.add_device("encoder", gpu_ms)
        with timer.part("postprocess"):
            pass
        timer.next_sample()
    s = timer.summary()
    assert s["encoder.gpu"]["mean"] == 2.0 and s["encoder.gpu"]["samples"] == 2
    assert s["gpu"]["max"] == 3.0
    assert abs(s["total"]["mean"] - s["encoder"]["mean"] - s["postprocess"]["mean"]) < 1e-3
    assert s["encoder"]["min"] >= 5.0  # host clock: the sleep is in, the GPU figures are not


def test_warmup_runs_leave_no_gpu_time_behind() -> None:
    timer = Timer()
    with timer.part("encoder"):
        pass
    timer.add_device("encoder", 100.0)
    timer.discard()
    with timer.part("encoder"):
        pass
    timer.next_sample()
    s = timer.summary()
    assert "gpu" not in s and "encoder.gpu" not in s


def test_host_only_runs_report_no_gpu_entries() -> None:
    timer = Timer()
    with timer.part("model"):
        pass
    timer.next_sample()
    assert set(timer.summary()) == {"model", "total"}
