"""Where the registry is: its URL and S3 endpoint, resolved once per command from flag, environment or pin.

Every command takes a `RegistryLocation` and asks it for the store and the DVC remote URL; nothing else
reads `$MODELZOO_REGISTRY` / `$MODELZOO_S3_ENDPOINT_URL` or parses a registry URL's scheme.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pipelines.errors import UsageError
from pipelines.gitrepo import find_root
from pipelines.registry.stores.base import RegistryError, Store, is_http_url, redact

REGISTRY_ENV = "MODELZOO_REGISTRY"
ENDPOINT_ENV = "MODELZOO_S3_ENDPOINT_URL"
DEFAULT_REGISTRY = "registry"  # the embedded local registry at the repository root

Kind = Literal["s3", "http", "local"]


@dataclass(frozen=True)
class RegistryLocation:
    """A registry URL (s3://bucket/prefix, http(s)://..., or an absolute local folder) and its S3 endpoint."""

    url: str
    endpoint_url: str | None = None

    @classmethod
    def parse(cls, url: str, endpoint_url: str | None = None, *, base: Path | None = None) -> RegistryLocation:
        """An explicit URL (no environment): a relative local path is taken relative to `base` (default:
        the working directory); a bad scheme or endpoint is one line, exit 2."""
        try:
            scheme = urlsplit(url).scheme.lower()
        except ValueError as err:
            raise RegistryError(f"registry URL {url.split('@')[-1]!r}: {err}", exit_code=2) from None
        if scheme in ("s3", "http", "https"):
            location = url
        elif scheme == "file":
            location = str(Path(urlsplit(url).path).resolve())
        elif scheme and len(scheme) > 1:  # not a Windows drive letter
            raise RegistryError(
                f"{redact(url)}: unsupported registry URL (use s3://, http(s)://, file:// or a path)", exit_code=2
            )
        else:
            location = str(((base or Path.cwd()) / url).resolve())
        if scheme == "s3" and endpoint_url and not is_http_url(endpoint_url):  # only an S3 client uses it
            raise RegistryError(
                f"endpoint URL {endpoint_url.split('@')[-1]!r} (--endpoint-url, ${ENDPOINT_ENV} or the pin's "
                "endpoint_url): expected http(s)://host[:port]",
                exit_code=2,
            )
        return cls(location, endpoint_url or None)

    @classmethod
    def resolve(
        cls,
        registry: str | None = None,
        endpoint_url: str | None = None,
        *,
        embedded: bool = True,
        base: Path | None = None,
    ) -> RegistryLocation:
        """The flag (or the pin's), else the environment, else (`embedded`) the repository's embedded
        registry; the endpoint likewise. The only place that reads either variable."""
        url = registry or os.environ.get(REGISTRY_ENV) or ""
        if not url.strip():
            if not embedded:
                raise UsageError(f"registry URL is empty: pass --registry or set ${REGISTRY_ENV}")
            url = str(find_root() / DEFAULT_REGISTRY)
        return cls.parse(url, endpoint_url or os.environ.get(ENDPOINT_ENV) or None, base=base)

    @property
    def kind(self) -> Kind:
        scheme = urlsplit(self.url).scheme.lower()
        if scheme == "s3":
            return "s3"
        return "http" if scheme in ("http", "https") else "local"

    def store(self) -> Store:
        if self.kind == "s3":
            from pipelines.registry.stores.s3 import S3Store

            return S3Store(self.url, self.endpoint_url)
        if self.kind == "http":
            from pipelines.registry.stores.http import HttpStore

            return HttpStore(self.url)
        from pipelines.registry.stores.local import LocalStore

        return LocalStore(Path(self.url))

    def dvc_remote_url(self) -> str:
        """`<registry>/dvc`: the DVC remote of the pipeline cache (S3 or local; HTTP cannot take a push)."""
        if self.kind == "http":
            raise RegistryError(f"{redact(self.url)}: a DVC remote needs an s3:// or local registry", exit_code=2)
        if self.kind == "s3":
            return self.url.rstrip("/") + "/dvc"
        return str(Path(self.url) / "dvc")


def open_store(url: str, endpoint_url: str | None = None) -> Store:
    """The store of an explicit registry URL (no environment): for code that already holds the URL."""
    return RegistryLocation.parse(url, endpoint_url).store()
