"""Trend charts in MODELS.md: one point per release and endpoint, identical bytes when rendered again."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from site_registry import ENDPOINTS, build_history

from pipelines.registry.charts import render_svg, trends
from pipelines.registry.history import read_history
from pipelines.registry.manifest import manifest_path
from pipelines.registry.stores import LocalStore

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> LocalStore:
    store = LocalStore(tmp_path_factory.mktemp("charts") / "registry")
    build_history(store, models=2, releases=4)
    return store


def test_one_point_per_release_and_endpoint(store: LocalStore) -> None:
    history = read_history(store)
    trend = trends(history)["model_00"]
    assert trend.versions == ["1.0.0", "1.1.0", "1.1.1", "1.2.0", "bleedingedge"]
    svg = render_svg(trend)
    for kind in ("metric", "latency"):
        for ep in ENDPOINTS:
            ids = re.findall(rf'<g id="pt-{kind}-{ep}-([^"]+)"><title>', svg)
            assert ids == trend.versions, (kind, ep)
    # The tooltip names the release and the value the manifest holds.
    value = history.releases[1].models["model_00"].metrics[ENDPOINTS[0]]
    assert f"<title>1.1.0 {ENDPOINTS[0]}: {value:.4g}</title>" in svg


def test_rendering_again_gives_identical_bytes(store: LocalStore) -> None:
    found = trends(read_history(store))
    svg = render_svg(found["model_01"])
    render_svg(found["model_00"])  # the figure is reused: nothing of one chart may leak into the next
    assert render_svg(found["model_01"]) == svg
    assert "<dc:date>" not in svg  # no render date in the metadata


def test_a_model_missing_from_a_release_has_no_point_there(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "registry")
    build_history(store, models=2, releases=2, bleeding_edge=False)
    latest = read_history(store).releases[-1]
    dropped = latest.model_copy(update={"version": "2.0.0", "models": {"model_00": latest.models["model_00"]}})
    store.put_bytes(manifest_path("2.0.0"), dropped.to_json().encode())
    found = trends(read_history(store))
    assert found["model_00"].versions == ["1.0.0", "1.1.0", "2.0.0"]
    assert found["model_01"].versions == ["1.0.0", "1.1.0"]
    assert "pt-metric-onnxruntime-cpu-fp32-2.0.0" not in render_svg(found["model_01"])


def _index(out: Path, registry: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "modelzoo"
    return subprocess.run(
        [str(exe), "index", "-o", str(out), "--registry", str(registry), *extra],
        cwd=REPO, capture_output=True, text=True,
    )  # fmt: skip


def test_index_writes_the_charts_beside_models_md_and_links_them(store: LocalStore, tmp_path: Path) -> None:
    out = tmp_path / "MODELS.md"
    first = _index(out, store.root)
    assert first.returncode == 0, first.stderr
    charts = tmp_path / "docs" / "charts"
    assert sorted(p.name for p in charts.iterdir()) == ["model_00.svg", "model_01.svg"]
    text = out.read_text()
    row = next(line for line in text.splitlines() if line.startswith("| model_00 |"))
    assert row.endswith("| [chart](docs/charts/model_00.svg) |")
    assert "![model_00: mAP and latency per release](docs/charts/model_00.svg)" in text
    before = {p.name: p.read_bytes() for p in charts.iterdir()}
    (charts / "gone.svg").write_text("<svg/>")  # the chart of a model no release holds any more
    again = _index(out, store.root)
    assert again.returncode == 0 and "MODELS.md: unchanged" in again.stdout
    assert {p.name: p.read_bytes() for p in charts.iterdir()} == before


def test_index_refuses_a_chart_folder_outside_its_own(store: LocalStore, tmp_path: Path) -> None:
    bad = _index(tmp_path / "MODELS.md", store.root, "--charts", "../elsewhere")
    assert bad.returncode == 2
    assert bad.stderr.strip().startswith("error: --charts: unsafe path '../elsewhere'")
