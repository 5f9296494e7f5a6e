"""MODELS.md: the models of the registry's releases, rendered from MODELS.md.j2 (deterministic)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jinja2

from pipelines.errors import ModelzooError
from pipelines.registry.charts import chart_name
from pipelines.registry.history import History
from pipelines.registry.huggingface import hub_tag
from pipelines.registry.manifest import BLEEDING_EDGE, FileEntry, Manifest, ModelEntry

TEMPLATE = "MODELS.md.j2"
# The trend charts, relative to MODELS.md (committed with it, so GitHub shows them).
CHARTS = "docs/charts"


@dataclass(frozen=True)
class ModelRow:
    release: str
    model: ModelEntry
    # Files a consumer downloads (all but provenance), in registry order.
    files: list[FileEntry]
    base_url: str


def human_size(n: int) -> str:
    if n < 1 << 10:
        return f"{n} B"
    if n < 1 << 20:
        return f"{n / (1 << 10):.1f} KiB"
    return f"{n / (1 << 20):.2f} MiB"


def _rows(manifests: dict[str, Manifest], order: list[str], base_url: str) -> list[ModelRow]:
    """Each model in its latest release (the bleeding edge only for models never released)."""
    latest: dict[str, ModelRow] = {}
    for version in order:
        for name, model in manifests[version].models.items():
            files = sorted((f for f in model.files if f.target != "provenance"), key=lambda f: (f.target, f.name))
            latest[name] = ModelRow(version, model, files, base_url)
    return [latest[n] for n in sorted(latest)]


def render_markdown(history: History, template: Path, base_url: str | None = None, charts: str | None = None) -> str:
    """MODELS.md; `charts`: the folder of the trend charts relative to it (None: no chart links)."""
    manifests = {m.version: m for m in history.ordered}
    released = [m.version for m in history.releases]
    order = [BLEEDING_EDGE] * (BLEEDING_EDGE in manifests) + released
    try:
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(template.parent),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.filters["size"] = human_size
        env.filters["num"] = lambda v: f"{v:.4g}"
        env.filters["chart"] = lambda name: f"{charts.rstrip('/')}/{chart_name(name)}" if charts else ""
        env.filters["hub_tag"] = hub_tag
        return env.get_template(template.name).render(
            rows=_rows(manifests, order, (base_url or "").rstrip("/")),
            releases=[manifests[v] for v in reversed(released)],
            bleedingedge=manifests.get(BLEEDING_EDGE),
            base_url=(base_url or "").rstrip("/"),
            charts=bool(charts),
        )
    except jinja2.TemplateError as err:
        where = f"{template}:{err.lineno}" if isinstance(err, jinja2.TemplateSyntaxError) else str(template)
        raise ModelzooError(f"{where}: {err}".splitlines()[0]) from None
