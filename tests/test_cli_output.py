"""The CLI's output: third-party deprecation noise is filtered, MODELZOO_DEBUG=1 shows it again."""

from __future__ import annotations

import os
import subprocess
import sys

# mmengine's package helpers import pkg_resources, which warns on import with setuptools >= 67: the
# noise a fresh `modelzoo repro` printed between its stage lines.
IMPORT_PKG_RESOURCES = "from pipelines.cli import run_app; run_app(lambda: __import__('pkg_resources'))"


def _stderr(debug: bool) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("MODELZOO_DEBUG", "PYTHONWARNINGS")}
    if debug:
        env["MODELZOO_DEBUG"] = "1"
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_PKG_RESOURCES], env=env, capture_output=True, text=True, check=True
    )
    return done.stderr


def test_third_party_deprecation_noise_is_filtered() -> None:
    assert "pkg_resources" not in _stderr(debug=False)


def test_debug_shows_the_warnings_again() -> None:
    assert "pkg_resources is deprecated" in _stderr(debug=True)
