"""Trend charts: a model's headline metric and latency per endpoint across the registry's releases (SVG).

Rendered with matplotlib (Agg-free SVG canvas, no pyplot state) and made byte-for-byte reproducible:
a fixed `svg.hashsalt` for the ids matplotlib generates, no date or creator in the metadata, text kept
as text (`svg.fonttype: none`) laid out with the DejaVu Sans metrics matplotlib ships. Every point is
its own group, id `pt-{metric|latency}-{endpoint}-{version}` with a <title> tooltip, so a page (or a
test) can find the point of each release.
"""

from __future__ import annotations

import concurrent.futures
import html
import io
import multiprocessing
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.fileio import write_text
from pipelines.registry.history import History

CHART_DIR = "charts"
# One colour per endpoint, in sorted endpoint order (Okabe-Ito, readable by colour-blind readers).
COLORS = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
RC: dict[str, Any] = {
    "svg.hashsalt": "modelzoo",
    "svg.fonttype": "none",
    "font.family": "DejaVu Sans",
    "font.size": 7.0,
    "axes.titlesize": 8.0,
    "axes.titley": 1.02,  # a fixed title position: placing it automatically measures every tick label again
    "axes.linewidth": 0.6,
    "lines.linewidth": 1.2,
    "lines.markersize": 4.0,
    "path.simplify": False,
}
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class Point:
    version: str
    value: float


@dataclass(frozen=True)
class Series:
    endpoint: str
    points: list[Point]


@dataclass(frozen=True)
class Trend:
    model: str
    headline: str
    versions: list[str]  # the x axis: every release holding the model, then the bleeding edge
    metric: list[Series]
    latency: list[Series]


def point_id(kind: str, endpoint: str, version: str) -> str:
    return _UNSAFE.sub("_", f"pt-{kind}-{endpoint}-{version}")


def chart_name(model: str) -> str:
    return f"{_UNSAFE.sub('_', model)}.svg"


def trends(history: History) -> dict[str, Trend]:
    """Per model, its headline metric and latency per endpoint in each release that holds it."""
    out: dict[str, Trend] = {}
    names = sorted({n for m in history.ordered for n in m.models})
    for name in names:
        held = [m for m in history.ordered if name in m.models]
        entries = [(m.version, m.models[name]) for m in held]
        headline = entries[-1][1].headline or "headline"

        def series(values: str, entries: list = entries) -> list[Series]:  # type: ignore[type-arg]
            endpoints = sorted({ep for _, e in entries for ep in getattr(e, values)})
            return [
                Series(ep, [Point(v, getattr(e, values)[ep]) for v, e in entries if ep in getattr(e, values)])
                for ep in endpoints
            ]

        out[name] = Trend(name, headline, [v for v, _ in entries], series("metrics"), series("latency_ms"))
    return out


class _Canvas(threading.local):
    """One figure per thread, drawn again for each chart: making a figure and its axes' ticks costs
    more than drawing it. Everything a chart sets is reset before the next one is drawn."""

    fig: Any = None
    axes: Any = None


_CANVAS = _Canvas()


def _canvas() -> tuple[Any, Any]:
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    if _CANVAS.fig is None:
        # Fixed margins, not a layout engine: the layout engines measure every label again (3x slower).
        fig = Figure(figsize=(7.0, 2.6))
        FigureCanvasSVG(fig)
        axes = fig.subplots(1, 2)
        fig.subplots_adjust(left=0.07, right=0.74, bottom=0.2, top=0.9, wspace=0.28)
        _CANVAS.fig, _CANVAS.axes = fig, axes
    fig, axes = _CANVAS.fig, _CANVAS.axes
    for legend in list(fig.legends):
        legend.remove()
    for ax in axes:
        for artist in [*ax.lines, *ax.texts]:
            artist.remove()
        ax.relim()
    return fig, axes


def render_svg(trend: Trend) -> str:
    """The chart of one model: headline metric (left) and mean latency (right) per endpoint, per release."""
    import matplotlib
    from matplotlib.ticker import MaxNLocator

    endpoints = sorted({s.endpoint for s in [*trend.metric, *trend.latency]})
    color = {ep: COLORS[i % len(COLORS)] for i, ep in enumerate(endpoints)}
    x = {v: i for i, v in enumerate(trend.versions)}
    points: dict[str, list[tuple[str, str]]] = {}  # line gid -> (point id, tooltip) in data order
    with matplotlib.rc_context():
        matplotlib.rcdefaults()  # not the user's matplotlibrc: the same bytes everywhere
        matplotlib.rcParams.update(RC)  # type: ignore[arg-type]
        fig, axes = _canvas()
        panels = (
            (axes[0], "metric", trend.metric, trend.headline, "{:.4g}"),
            (axes[1], "latency", trend.latency, "mean latency (ms)", "{:.4g} ms"),
        )
        for ax, kind, all_series, title, fmt in panels:
            ax.set_title(f"{trend.model}: {title}", loc="left")
            for s in all_series:
                gid = _UNSAFE.sub("_", f"line-{kind}-{s.endpoint}")
                xs, ys = [x[p.version] for p in s.points], [p.value for p in s.points]
                ax.plot(xs, ys, marker="o", color=color[s.endpoint], label=s.endpoint, gid=gid)
                points[gid] = [
                    (point_id(kind, s.endpoint, p.version), f"{p.version} {s.endpoint}: {fmt.format(p.value)}")
                    for p in s.points
                ]
            ax.set_xticks(range(len(trend.versions)), trend.versions, rotation=30, ha="right", rotation_mode="anchor")
            ax.set_xlim(-0.5, max(len(trend.versions) - 0.5, 0.5))
            values = [p.value for s in all_series for p in s.points]
            # Log scale where endpoints differ by more than 20x (PyTorch on CPU beside TensorRT).
            wide = kind == "latency" and min(values, default=0) > 0 and max(values) > 20 * min(values)
            ax.set_yscale("log" if wide else "linear")
            ax.set_autoscaley_on(True)
            ax.autoscale_view(scalex=False)
            if not wide:
                ax.yaxis.set_major_locator(MaxNLocator(4))
            ax.grid(True, linewidth=0.3, color="#cccccc")
            if not all_series:
                ax.text(0.5, 0.5, "not measured", ha="center", va="center", transform=ax.transAxes)
        handles, labels = axes[1].get_legend_handles_labels()
        if not handles:
            handles, labels = axes[0].get_legend_handles_labels()
        if handles:
            fig.legend(handles, labels, loc="center left", bbox_to_anchor=(0.75, 0.55), frameon=False, fontsize=6.5)
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    return _group_points(buf.getvalue(), points)


def _group_points(svg: str, points: dict[str, list[tuple[str, str]]]) -> str:
    """Wrap each marker of a line (a <use>, in data order) in its own <g id=...> with a <title> tooltip.

    One line per series with markers draws ~7x faster than one artist per point; the points get their
    ids here instead.
    """

    def line(m: re.Match[str]) -> str:
        uses = re.findall(r"<use [^>]*/>", m.group(2))
        want = points[m.group(1)]
        if len(uses) != len(want):
            raise AssertionError(f"chart line {m.group(1)}: {len(uses)} markers drawn for {len(want)} points")
        marks = iter(want)

        def wrap(u: re.Match[str]) -> str:
            pid, title = next(marks)
            return f'<g id="{pid}"><title>{html.escape(title)}</title>{u.group(0)}</g>'

        return f'<g id="{m.group(1)}">' + re.sub(r"<use [^>]*/>", wrap, m.group(2)) + "</g>"

    # A line's group closes at its own indentation (3 spaces: figure > axes > line).
    out, lines = re.subn(r'<g id="(line-[^"]+)">(.*?\n   )</g>', line, svg, flags=re.S)
    if lines != len(points):
        raise AssertionError(f"chart: {lines} lines found in the SVG for {len(points)} series")
    return out


# Below this many charts one process renders them all (a worker process costs ~1 s to start).
PARALLEL_FROM = 12


def render_charts(found: dict[str, Trend]) -> dict[str, str]:
    """Every model's chart (name -> SVG), in worker processes (one per CPU) when there are many.

    Each chart is a pure function of its trend, so the bytes do not depend on which process drew it.
    """
    workers = min(os.cpu_count() or 1, len(found) // PARALLEL_FROM + 1)
    if workers < 2:
        return {name: render_svg(t) for name, t in found.items()}
    # forkserver: a fresh interpreter per worker, never a fork of a process that runs threads.
    ctx = multiprocessing.get_context("forkserver")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        return dict(zip(found, pool.map(render_svg, found.values(), chunksize=4), strict=True))


def write_charts(history: History, dest: Path) -> dict[str, Path]:
    """One SVG per model in `dest` (unchanged files are not rewritten); charts of models gone are removed."""
    written: dict[str, Path] = {}
    dest.mkdir(parents=True, exist_ok=True)  # also when empty: the workflows commit the folder back
    for name, svg in render_charts(trends(history)).items():
        path = dest / chart_name(name)
        if not (path.is_file() and path.read_text() == svg):
            write_text(path, svg)
        written[name] = path
    for stale in sorted(set(dest.glob("*.svg")) - set(written.values())):
        stale.unlink()
    return written
