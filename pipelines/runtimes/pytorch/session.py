"""PyTorch backend: the source model's components, on the CPU or a CUDA device."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from pipelines.runtimes.base import Arrays, BackendUnavailable

if TYPE_CHECKING:
    import torch

    from pipelines.descriptor import Endpoint
    from pipelines.workspace import ModelContext


class TorchSession:
    def __init__(self, module: torch.nn.Module, input_names: list[str], output_names: list[str], device: str):
        import torch

        self._torch = torch
        self.module = module
        self.input_names = input_names
        self.output_names = output_names
        self.device = torch.device(device)
        self.device_ms: list[float] = []

    def run(self, inputs: Arrays) -> Arrays:
        torch = self._torch
        args = [torch.from_numpy(np.ascontiguousarray(inputs[n])).to(self.device) for n in self.input_names]
        cuda = self.device.type == "cuda"
        if cuda:  # GPU time of the forward pass alone, without the copies
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
        with torch.inference_mode():
            out = self.module(*args)
        if cuda:
            end.record()
        if isinstance(out, torch.Tensor):
            out = (out,)
        if len(out) != len(self.output_names):
            raise RuntimeError(f"model returned {len(out)} outputs, descriptor names {len(self.output_names)}")
        # .cpu() waits for the device, so timings around run() are complete.
        host = {n: t.detach().cpu().numpy() for n, t in zip(self.output_names, out, strict=True)}
        if cuda:
            end.synchronize()
            self.device_ms.append(float(start.elapsed_time(end)))
        return host

    def close(self) -> None:
        pass


class PyTorchBackend:
    name = "pytorch"

    def check(self, endpoint: Endpoint) -> None:
        import torch

        if endpoint.device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendUnavailable("pytorch on cuda: no CUDA device visible to torch")
        if endpoint.precision != "fp32":
            raise BackendUnavailable(f"pytorch runs the fp32 source model only, not {endpoint.precision}")

    def open(self, ctx: ModelContext, component: str, endpoint: Endpoint) -> TorchSession:
        from pipelines.sources import load_components

        self.check(endpoint)
        if endpoint.device.startswith("cuda"):
            import torch

            # PyTorch runs convolutions in TF32 on Ampere and later by default (errors of ~1e-2 on YOLOX's
            # box outputs); this backend is the fp32 reference, so it computes in IEEE fp32. Legacy flags:
            # once the newer fp32_precision API has set conv and RNN apart, every read of them raises.
            torch.backends.cudnn.allow_tf32 = False
            torch.backends.cuda.matmul.allow_tf32 = False
        modules = load_components(ctx, endpoint.device)
        spec = next(c for c in ctx.descriptor.components if c.name == component)
        return TorchSession(
            modules[component],
            [t.name for t in spec.inputs],
            [t.name for t in spec.outputs],
            endpoint.device,
        )


BACKEND = PyTorchBackend()
