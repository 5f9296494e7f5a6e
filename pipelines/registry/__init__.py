"""The model registry: artifacts, release manifests and dataset info files under one root (S3 or local)."""
