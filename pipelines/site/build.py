"""Render the registry's static site from its history: plain HTML and SVG, relative links only.

Layout (under the output folder; `site/` in the registry when published):
    index.html                     releases and models
    releases/<version>.html        models, files (size, sha256), signature, metrics and latency per endpoint
    models/<model>.html            trend chart, per-class metrics, I/O signature, ROS parameters, provenance
    diffs/<a>..<b>.html            what changed between consecutive releases (versioning.diff_releases)
    charts/<model>.svg             the trend charts of MODELS.md
    style.css

Every link is relative and names a file (no directory index, no CDN, no script), so the pages work
from a folder, file://, an HTTP server or an S3 static-website bucket alike. Rendering is
deterministic: the same registry gives the same bytes.
"""

from __future__ import annotations

import itertools
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import jinja2

from pipelines.fileio import atomic_dir
from pipelines.registry.charts import CHART_DIR, chart_name, render_charts, trends
from pipelines.registry.history import History
from pipelines.registry.index import human_size
from pipelines.registry.manifest import FileEntry, ModelEntry
from pipelines.registry.stores import Store
from pipelines.registry.versioning import diff_releases
from pipelines.site.signatures import Signature, signature_status

_XML_PROLOGUE = re.compile(r"\A(<\?xml[^>]*\?>\s*)?(<!DOCTYPE[^>]*>\s*)?")


@dataclass(frozen=True)
class SiteResult:
    out: Path
    pages: list[str]  # paths relative to `out`
    charts: int


@dataclass(frozen=True)
class Held:
    """A model as one release holds it."""

    version: str
    entry: ModelEntry


@dataclass
class _Pages:
    env: jinja2.Environment
    written: dict[str, str] = field(default_factory=dict)

    def page(self, rel: str, template: str, **ctx: Any) -> None:
        root = "../" * rel.count("/")
        self.written[rel] = self.env.get_template(template).render(root=root, page=rel, **ctx)


def release_page(version: str) -> str:
    return f"releases/{quote(version)}.html"


def model_page(name: str) -> str:
    return f"models/{quote(name)}.html"


def diff_page(a: str, b: str) -> str:
    return f"diffs/{quote(a)}..{quote(b)}.html"


def _env(files_url: str | None) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("pipelines.site", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["size"] = human_size
    env.filters["num"] = lambda v: "-" if v is None else f"{v:.4g}"
    env.filters["delta"] = lambda d: "" if d is None else f"{'+' if d >= 0 else ''}{d:.4g}"
    env.globals.update(release_page=release_page, model_page=model_page, diff_page=diff_page, chart_name=chart_name)

    def download(f: FileEntry, root: str) -> str:
        """The file's URL: under `files_url` (relative to the site root unless absolute), or '' (no link)."""
        if files_url is None:
            return ""
        base = files_url.rstrip("/")
        if not urlsplit(base).scheme and not base.startswith("/"):
            base = posixpath.join(root, base) if base not in ("", ".") else root.rstrip("/") or "."
        return f"{base}/{quote(f.path)}"

    env.globals["download"] = download
    return env


def _inline_svg(svg: str) -> str:
    """An SVG file's markup for embedding in HTML (without its XML prologue)."""
    return _XML_PROLOGUE.sub("", svg)


def render_site(history: History, store: Store, files_url: str | None = None) -> dict[str, str]:
    """Every file of the site, path -> text."""
    env = _env(files_url)
    pages = _Pages(env)
    ordered = history.ordered
    signatures: dict[str, Signature] = {m.version: signature_status(store, m.version) for m in ordered}
    held: dict[str, list[Held]] = {}
    for m in ordered:
        for name, entry in m.models.items():
            held.setdefault(name, []).append(Held(m.version, entry))
    charts = render_charts(trends(history))
    diffs = [diff_releases(a, b) for a, b in itertools.pairwise(ordered)]
    following = {d.before: d for d in diffs}
    preceding = {d.after: d for d in diffs}

    common = {"history": history, "signatures": signatures}
    pages.page("index.html", "index.html.j2", held=held, diffs=diffs, **common)
    for m in ordered:
        pages.page(
            release_page(m.version),
            "release.html.j2",
            release=m,
            previous=preceding.get(m.version),
            next=following.get(m.version),
            **common,
        )
    for name, entries in sorted(held.items()):
        latest = entries[-1]
        before = entries[-2] if len(entries) > 1 else None
        pages.page(
            model_page(name),
            "model.html.j2",
            name=name,
            entries=entries,
            latest=latest,
            before=before,
            chart=_inline_svg(charts[name]),
            metric_names=sorted({k for d in latest.entry.metric_details.values() for k in d}),
            releases={m.version: m for m in ordered},
            **common,
        )
    for d in diffs:
        pages.page(diff_page(d.before, d.after), "diff.html.j2", diff=d, **common)
    files = dict(pages.written)
    files.update({f"{CHART_DIR}/{chart_name(n)}": svg for n, svg in charts.items()})
    files["style.css"] = env.loader.get_source(env, "style.css")[0]  # type: ignore[union-attr]
    return files


def build_site(history: History, store: Store, out: Path, files_url: str | None = None) -> SiteResult:
    """Write the site into `out` (replaced whole, atomically: never half old, half new)."""
    files = render_site(history, store, files_url)
    with atomic_dir(out) as tmp:
        for rel, text in sorted(files.items()):
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    pages = sorted(p for p in files if p.endswith(".html"))
    return SiteResult(out, pages, sum(1 for p in files if p.endswith(".svg")))
