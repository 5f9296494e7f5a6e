"""PyTorch on CUDA as a verify/evaluate backend: the same outputs as on the CPU, and a metric."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipelines.descriptor import Endpoint, load_descriptor
from pipelines.errors import ModelzooError
from pipelines.stages.runner import run_endpoint, skip_reason
from pipelines.tasks import get_task
from pipelines.workspace import ModelContext
from tests.gpu.conftest import bundled_models

CUDA = Endpoint(backend="pytorch", device="cuda")
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(skip_reason(CUDA) is not None, reason=str(skip_reason(CUDA))),
]


@pytest.mark.parametrize("name", bundled_models())
def test_pytorch_cuda_matches_the_cpu_and_scores_the_same(name: str, scratch: Path) -> None:
    ctx = ModelContext(scratch, load_descriptor(scratch, name))
    try:
        task = get_task(ctx)
        samples = list(task.load_samples(ctx.dataset, ctx.descriptor.evaluation.split, 16))
        cpu, _ = run_endpoint(task, Endpoint(backend="pytorch", device="cpu"), samples)
    except (ModelzooError, ImportError) as err:  # e.g. mmcv not built for this Python/torch
        pytest.skip(f"{name}: cannot run here: {str(err).splitlines()[0]}")
    gpu, timer = run_endpoint(task, CUDA, samples, warmup=2)
    import torch

    # The fp32 reference stays fp32: TF32 put YOLOX's boxes 0.014 off the CPU's on an H200.
    assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
    for r_cpu, r_gpu in zip(cpu, gpu, strict=True):
        assert r_cpu.raw.keys() == r_gpu.raw.keys()
        for key, ref in r_cpu.raw.items():
            # IEEE fp32 on both (the backend turns TF32 off); different kernels sum in a different order.
            np.testing.assert_allclose(r_gpu.raw[key], ref, atol=1e-2, rtol=1e-2, err_msg=key)
    headline = ctx.descriptor.evaluation.headline
    m_cpu = task.metrics([r.prediction for r in cpu], samples)
    m_gpu = task.metrics([r.prediction for r in gpu], samples)
    assert m_gpu[headline] == pytest.approx(m_cpu[headline], abs=1 / len(samples))
    summary = timer.summary()
    assert summary["total"]["samples"] == len(samples)
    # CUDA-event time of every component, inside its host time.
    assert summary["gpu"]["samples"] == len(samples)
    for comp in ctx.descriptor.components:
        assert 0 < summary[f"{comp.name}.gpu"]["mean"] <= summary[comp.name]["mean"]
