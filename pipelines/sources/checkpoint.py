"""Checkpoint reading shared by sources, and its identity for provenance."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipelines.errors import ModelzooError


def load_state_dict(path: Path) -> dict[str, Any]:
    import torch

    try:
        # weights_only: a checkpoint is data, never code to run.
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ModelzooError(f"{path}: not a readable PyTorch checkpoint: {str(err).splitlines()[0]}") from None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise ModelzooError(f"{path}: expected a state dict, got {type(obj).__name__}")
    return obj
