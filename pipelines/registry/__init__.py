"""The model registry: artifacts, release manifests and dataset info files under one root (S3, local or HTTP).

Import direction (checked by the import graph): `consumer`, `ci` and `site` depend on `registry`; the
registry never imports them. What both sides of a release need lives here: where the registry is
(`location`), its storage (`stores/`), manifests and signatures, and Autoware's package-folder layout
(`layout`, which `modelzoo fetch --layout autoware` writes and the Hugging Face channel commits). Git
queries come from `pipelines.gitrepo`, never from `ci`.
"""
