"""Publish the site into the registry under `site/`: every page uploaded, index.html last, stale pages deleted."""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.registry.stores import Store

SITE_PREFIX = "site"


@dataclass(frozen=True)
class Published:
    uploaded: int
    deleted: list[str]


def publish_site(store: Store, files: dict[str, str], prefix: str = SITE_PREFIX) -> Published:
    """Upload `files` (site path -> text) under `prefix`/, then delete what the site no longer has.

    index.html goes last, so the entry page never links to a page not uploaded yet. The S3 store sets
    each object's Content-Type from its extension (text/html, image/svg+xml, text/css), which a
    static-website bucket serves as is.
    """
    keys = {f"{prefix}/{rel}": text for rel, text in files.items()}
    order = sorted(keys, key=lambda k: (k == f"{prefix}/index.html", k))
    for key in order:
        store.put_bytes(key, keys[key].encode("utf-8"))
    stale = [o.key for o in store.list(f"{prefix}/") if o.key not in keys]
    for key in stale:
        store.delete(key)
    return Published(len(order), stale)
