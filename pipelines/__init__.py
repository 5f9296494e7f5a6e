"""modelzoo: turn a perception checkpoint + config into released, verified deployment artifacts."""

from pipelines.version import DESCRIPTOR_INTERFACE_VERSION, __version__

__all__ = ["DESCRIPTOR_INTERFACE_VERSION", "__version__"]
