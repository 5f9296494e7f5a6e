"""Time the Hugging Face channel on a registry's releases, against a local hub (olah on 127.0.0.1).

    python benchmarks/hf_channel.py --registry DIR --version 1.0.0 [--version 1.1.0 ...]

For each version in order: `publish_hub` into fresh bare repositories (one per Autoware package), then
the real `hf download <repo> --revision vX.Y --local-dir` of every package and `modelzoo check-bundle`
on what it placed. Prints JSON: per version and package, publish state and seconds, download seconds
and bytes. The HTTPS push to the Hub itself is not measured (olah is read-only; the push is git over file://).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipelines.registry.huggingface import publish_hub  # noqa: E402
from pipelines.registry.layout import check_bundle, packages  # noqa: E402
from pipelines.registry.location import open_store  # noqa: E402
from pipelines.registry.releases import require_manifest  # noqa: E402
from scripts.local_hub import start_hub  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--registry", required=True)
    ap.add_argument("--version", action="append", required=True)
    ap.add_argument("--lfs-threshold", type=int, default=1 << 20)
    ap.add_argument("--package", action="append", help="Only these Autoware packages (default: all).")
    args = ap.parse_args()
    store = open_store(args.registry, None)
    out: dict[str, object] = {"versions": {}}
    with tempfile.TemporaryDirectory(prefix="hf-bench-") as tmp:
        hub = start_hub(Path(tmp) / "hub")
        try:
            for version in args.version:
                manifest = require_manifest(store, version)
                for pkg in args.package or packages(manifest):
                    hub.bare(manifest.models[packages(manifest)[pkg][0]].autoware.repository)  # type: ignore[union-attr]
                started = time.monotonic()
                result = publish_hub(
                    store, version, hub_url=hub.push_url, lfs_threshold=args.lfs_threshold, only=args.package
                )
                publish_s = round(time.monotonic() - started, 2)
                rows = {}
                for r in result.repos:
                    dest = Path(tmp) / "dl" / version / r.package
                    t0 = time.monotonic()
                    done = hub.download(r.repository, r.tag, dest, Path(tmp) / "home")
                    if done.returncode != 0:
                        raise SystemExit(f"hf download {r.repository} --revision {r.tag}: {done.stderr[-300:]}")
                    seconds = time.monotonic() - t0
                    checked = check_bundle(dest)
                    size = sum((dest / n).stat().st_size for n in checked.checked)
                    rows[r.package] = {"state": r.state, "files": r.files, "lfs_files": r.lfs_files,
                                       "publish_s": r.seconds, "download_s": round(seconds, 2),
                                       "download_bytes": size, "check_bundle_files": len(checked.checked)}  # fmt: skip
                out["versions"][version] = {"tag": result.tag, "publish_total_s": publish_s,  # type: ignore[index]
                                            "packages": rows}  # fmt: skip
        finally:
            hub.stop()
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
