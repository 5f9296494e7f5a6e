"""The registry's static site: rendered from a registry of three releases, published to S3, and loaded
in a real headless Chromium (Debian's `chromium`, driven through Playwright's CDP client; never a
downloaded browser) from an HTTP server on 127.0.0.1."""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlsplit

import pytest
from conftest import S3Server
from site_registry import ENDPOINTS, build_history

from pipelines.registry.history import read_history
from pipelines.registry.location import open_store
from pipelines.registry.stores import LocalStore
from pipelines.site.build import build_site, render_site

REPO = Path(__file__).resolve().parents[1]
RELEASES = ["1.0.0", "1.1.0", "1.1.1"]
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def modelzoo(*args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "modelzoo"
    return subprocess.run([str(exe), *args], cwd=REPO, capture_output=True, text=True)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Releases 1.0.0, 1.1.0, 1.1.1 (an alias of 1.1.0) and the bleeding edge of two models; 1.1.0 signed."""
    root = tmp_path_factory.mktemp("site") / "registry"
    store = LocalStore(root)
    assert build_history(store, models=2, releases=3) == RELEASES
    store.put_bytes("releases/1.1.0/manifest.json.sig", b"signature bytes")
    return root


def test_the_site_has_a_page_per_release_model_and_diff_and_renders_identically(registry: Path, tmp_path: Path) -> None:
    store = LocalStore(registry)
    history = read_history(store)
    first = build_site(history, store, tmp_path / "a", files_url="..")
    build_site(history, store, tmp_path / "b", files_url="..")
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files)
    assert first.pages == sorted(
        [
            "index.html",
            *(f"releases/{v}.html" for v in [*RELEASES, "bleedingedge"]),
            "models/model_00.html",
            "models/model_01.html",
            "diffs/1.0.0..1.1.0.html",
            "diffs/1.1.0..1.1.1.html",
            "diffs/1.1.1..bleedingedge.html",
        ]
    )
    release = (tmp_path / "a" / "releases" / "1.1.0.html").read_text()
    entry = history.releases[1].models["model_00"]
    onnx = next(f for f in entry.files if f.target == "onnx")
    assert f'<code class="sha">{onnx.sha256}</code>' in release
    assert f'href="../../{onnx.path}"' in release  # relative to <registry>/site/releases/
    assert '<span class="badge signed"' in release
    assert '<span class="badge unsigned">' in (tmp_path / "a" / "releases" / "1.0.0.html").read_text()
    diff = (tmp_path / "a" / "diffs" / "1.0.0..1.1.0.html").read_text()
    assert "fingerprint changed" in diff and "Required bump" in diff


def test_site_build_cli_without_files_url_links_no_downloads(registry: Path, tmp_path: Path) -> None:
    done = modelzoo("site", "build", "-o", str(tmp_path / "out"), "--registry", str(registry))
    assert done.returncode == 0, done.stderr
    assert "10 page(s), 2 chart(s)" in done.stdout
    page = (tmp_path / "out" / "releases" / "1.0.0.html").read_text()
    assert "model_00.onnx" in page and "models/CenterPoint/" not in page


def test_site_publish_to_s3_types_the_pages_and_drops_stale_ones(
    registry: Path, s3_server: S3Server, s3_bucket: str
) -> None:
    s3 = s3_server.client()
    s3.put_object(Bucket=s3_bucket, Key="zoo/site/releases/0.9.0.html", Body=b"a release gc deleted")
    target = f"s3://{s3_bucket}/zoo"
    store = open_store(target, s3_server.endpoint)
    src = LocalStore(registry)
    for obj in src.list("releases/"):  # the manifests alone: the site reads nothing else
        with src.open_read(obj.key) as f:
            store.put_bytes(obj.key, f.read())
    done = modelzoo("site", "publish", "--registry", target, "--endpoint-url", s3_server.endpoint)
    assert done.returncode == 0, done.stderr
    assert "1 stale deleted" in done.stdout
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket, Prefix="zoo/site/")["Contents"]}
    assert "zoo/site/releases/0.9.0.html" not in keys and "zoo/site/index.html" in keys
    types = {
        key: s3.head_object(Bucket=s3_bucket, Key=f"zoo/site/{key}")["ContentType"]
        for key in ("index.html", "charts/model_00.svg", "style.css")
    }
    assert types == {"index.html": "text/html", "charts/model_00.svg": "image/svg+xml", "style.css": "text/css"}
    assert (
        s3.get_object(Bucket=s3_bucket, Key="zoo/site/index.html")["Body"].read().decode()
        == (render_site(read_history(store), store, "..")["index.html"])
    )


# -- in a real browser -----------------------------------------------------------------------------


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        if found := shutil.which(name):
            return found
    pytest.skip("no chromium on PATH: scripts/setup-browser installs Debian's `chromium` (needs root and apt-get)")


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def serve(root: Path) -> Iterator[str]:
    """`root` over HTTP on 127.0.0.1 (a free port), like a static-website bucket."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_every_page_renders_and_every_link_resolves_in_chromium(registry: Path, tmp_path: Path) -> None:
    executable = chromium()
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright (the dev extra) is not installed")
    done = modelzoo("site", "build", "-o", str(registry / "site"), "--files-url", "..", "--registry", str(registry))
    assert done.returncode == 0, done.stderr
    shots = tmp_path / "screenshots"
    with serve(registry) as base, playwright.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"),  # a fresh --user-data-dir
            executable_path=executable,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1200, "height": 900},
        )
        try:
            crawl = _crawl(context, f"{base}/site/index.html")
            page = context.new_page()
            page.goto(f"{base}/site/models/model_00.html")
            points = {
                kind: {
                    ep: page.eval_on_selector_all(
                        f'[id^="pt-{kind}-{ep}-"]', "els => els.map(e => e.querySelector('title').textContent)"
                    )
                    for ep in ENDPOINTS
                }
                for kind in ("metric", "latency")
            }
            chart = page.locator("#trend svg").bounding_box()
            shots.mkdir()
            page.screenshot(path=str(shots / "model.png"), full_page=True)
            page.goto(f"{base}/site/index.html")
            page.screenshot(path=str(shots / "index.png"), full_page=True)
        finally:
            context.close()

    html_files = {f"site/{p.relative_to(registry / 'site').as_posix()}" for p in (registry / "site").rglob("*.html")}
    assert crawl.errors == {}, crawl.errors
    assert crawl.broken == {}, crawl.broken
    assert set(crawl.pages) == html_files, "every page is reachable from the index"
    assert any(u.startswith("models/CenterPoint/") for u in crawl.other), "download links were checked too"
    # One point per release (and the bleeding edge, last) on every line of the trend chart.
    for kind, lines in points.items():
        for ep, titles in lines.items():
            assert [t.split(" ")[0] for t in titles] == [*RELEASES, "bleedingedge"], (kind, ep, titles)
    assert chart is not None and chart["width"] > 400 and chart["height"] > 100
    keep = os.environ.get("MODELZOO_SITE_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        for shot in shots.iterdir():
            shutil.copy(shot, Path(keep) / f"site-{shot.name}")
    print(f"screenshots: {shots / 'index.png'} {shots / 'model.png'}" + (f" (copied to {keep})" if keep else ""))
    for shot in shots.iterdir():
        assert shot.stat().st_size > 20_000, f"{shot}: suspiciously small for a page with charts"


class Crawl:
    def __init__(self) -> None:
        self.pages: list[str] = []  # HTML pages loaded (registry-relative)
        self.other: list[str] = []  # other URLs fetched (SVG, CSS, downloads)
        self.errors: dict[str, list[str]] = {}  # page -> console errors, page errors, failed requests
        self.broken: dict[str, str] = {}  # URL -> status


def _crawl(context, start: str) -> Crawl:  # type: ignore[no-untyped-def]
    """Load every page reachable from `start` in the browser; fetch every other link it names."""
    origin = f"{urlsplit(start).scheme}://{urlsplit(start).netloc}/"
    crawl, queue, seen = Crawl(), [start], {start}
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    page.on("response", lambda r: problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
    while queue:
        url = queue.pop(0)
        rel = url.removeprefix(origin)
        if not url.endswith(".html"):
            status = context.request.get(url).status
            crawl.other.append(rel)
            if status != 200:
                crawl.broken[rel] = str(status)
            continue
        problems.clear()
        response = page.goto(url, wait_until="load")
        crawl.pages.append(rel)
        if response is None or response.status != 200:
            crawl.broken[rel] = str(response.status if response else "no response")
        if problems:
            crawl.errors[rel] = list(problems)
        links = page.eval_on_selector_all(
            "a[href], img[src], link[href]", "els => els.map(e => e.getAttribute('href') || e.getAttribute('src'))"
        )
        for link in links:
            if link.startswith(("data:", "#")):
                continue
            assert not urlsplit(link).scheme and not link.startswith("/"), f"{rel}: link {link!r} is not relative"
            target = urldefrag(urljoin(url, link))[0]
            if target not in seen:
                seen.add(target)
                queue.append(target)
    return crawl
