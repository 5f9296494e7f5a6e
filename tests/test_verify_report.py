"""verify's typed results serialise to exactly the verify.json of before they were typed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipelines.comparison import OutputComparison, compare
from pipelines.descriptor import Tolerance
from pipelines.stages.verify import ScenarioResult, VerifyReport
from tests.helpers import REPO


def test_a_comparison_serialises_to_the_dict_verify_wrote() -> None:
    ref = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
    test = np.array([[1.0, 2.5], [3.0, 4.0]], np.float32)
    got = compare(ref, test, Tolerance(atol=0.1, rtol=0.0))
    # The dict form verify.json held before the results were typed (same keys, same values).
    assert got.to_json() == {
        "pass": False,
        "max_abs_error": 0.5,
        "max_rel_error": 0.25,
        "worst_index": [0, 1],
        "worst_ref": 2.0,
        "worst_test": 2.5,
        "failed_elements": 1,
        "atol": 0.1,
        "rtol": 0.0,
    }
    assert compare(ref, test[:1], Tolerance()).to_json() == {"pass": False, "error": "shape [1, 2] != reference [2, 2]"}
    empty = np.zeros((0, 3), np.float32)
    assert compare(empty, empty, Tolerance()).to_json() == {
        "pass": True,
        "max_abs_error": 0.0,
        "max_rel_error": 0.0,
        "worst_index": [],
    }
    kept = OutputComparison(False, error="missing in test outputs", sample=1, report_only=True)
    assert kept.to_json() == {"pass": False, "error": "missing in test outputs", "sample": 1, "report_only": True}


def test_a_report_serialises_to_the_dict_verify_wrote() -> None:
    out = OutputComparison(True, max_abs_error=0.0, pairs=3, sample=0)
    report = VerifyReport(
        "m",
        {
            "a_vs_b": ScenarioResult("pass", samples=2, outputs={"boxes.matched": out}),
            "a_vs_c": ScenarioResult("skipped", reason="c: no GPU"),
        },
    )
    assert report.to_json() == {
        "model": "m",
        "scenarios": {
            "a_vs_b": {
                "status": "pass",
                "samples": 2,
                "outputs": {"boxes.matched": {"pass": True, "max_abs_error": 0.0, "pairs": 3, "sample": 0}},
            },
            "a_vs_c": {"status": "skipped", "reason": "c: no GPU"},
        },
        "status": "pass",
    }
    failing = VerifyReport("m", {**report.scenarios, "x": ScenarioResult("fail", samples=1, outputs={})})
    assert failing.status == "fail"


@pytest.mark.parametrize("path", sorted(REPO.glob("artifacts/*/verify.json")), ids=lambda p: p.parent.name)
def test_committed_reports_round_trip(path: Path) -> None:
    data = json.loads(path.read_text())
    report = VerifyReport.from_json(data)
    assert report.to_json() == data
    assert report.status == data["status"]
