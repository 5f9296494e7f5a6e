"""Latency bookkeeping: named parts per sample, then summary statistics in milliseconds."""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from collections.abc import Iterator

import numpy as np


class Timer:
    """Collects the time of named parts (preprocess, <component>, postprocess...) per sample, on
    the host clock, and beside it the GPU time of components on a CUDA device (CUDA events)."""

    def __init__(self) -> None:
        self.samples: list[dict[str, float]] = []
        self.device_samples: list[dict[str, float]] = []
        self._current: dict[str, float] = defaultdict(float)
        self._device: dict[str, float] = defaultdict(float)

    @contextlib.contextmanager
    def part(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self._current[name] += (time.perf_counter() - start) * 1e3

    def add_device(self, name: str, ms: float) -> None:
        """GPU time of a part, measured by the backend (it is inside the host time of that part)."""
        self._device[name] += ms

    def next_sample(self) -> None:
        if self._current:
            self.samples.append(dict(self._current))
            self.device_samples.append(dict(self._device))
        self.discard()

    def discard(self) -> None:
        self._current = defaultdict(float)
        self._device = defaultdict(float)

    def summary(self) -> dict[str, dict[str, float]]:
        """Host time per part and in total; GPU time per component as "<component>.gpu" and in
        total as "gpu" (not added to "total", which it is part of)."""
        parts = sorted({k for s in self.samples for k in s})
        out = {p: stats([s.get(p, 0.0) for s in self.samples]) for p in parts}
        out["total"] = stats([sum(s.values()) for s in self.samples])
        gpu = sorted({k for s in self.device_samples for k in s})
        for p in gpu:
            out[f"{p}.gpu"] = stats([s.get(p, 0.0) for s in self.device_samples])
        if gpu:
            out["gpu"] = stats([sum(s.values()) for s in self.device_samples])
        return out


def stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {"samples": 0}
    a = np.asarray(values, dtype=np.float64)
    p50, p90, p99 = np.percentile(a, [50, 90, 99])
    return {
        "mean": round(float(a.mean()), 4),
        "std": round(float(a.std()), 4),
        "min": round(float(a.min()), 4),
        "max": round(float(a.max()), 4),
        "p50": round(float(p50), 4),
        "p90": round(float(p90), 4),
        "p99": round(float(p99), 4),
        "samples": len(values),
    }
