"""Versions of modelzoo itself, imported by name (`pipelines/__init__.py` re-exports them)."""

__version__ = "0.1.0"

# The interface between modelzoo and its consumers (descriptor fields, manifest layout).
# Its major number changes on an API change (ModelZoo versioning rule X).
DESCRIPTOR_INTERFACE_VERSION = "1.0.0"
