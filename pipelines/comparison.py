"""What verify records per output: `OutputComparison` (after polygraphy's OutputCompareResult), made
by `compare` for a tensor and by the tasks' end-to-end checks (matched boxes) for a prediction.

An element passes when abs(ref - test) <= atol + rtol * abs(ref) (numpy.isclose's rule).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from pipelines.descriptor import Tolerance


@dataclass(frozen=True)
class OutputComparison:
    """One output (or end-to-end check) of one sample. Fields left None are not recorded."""

    passed: bool
    error: str | None = None  # why it failed, where no number says it (shape, missing output)
    max_abs_error: float | None = None
    max_rel_error: float | None = None
    worst_index: tuple[int, ...] | None = None  # the element furthest outside its tolerance
    worst_ref: float | None = None
    worst_test: float | None = None
    failed_elements: int | None = None
    atol: float | None = None
    rtol: float | None = None
    pairs: int | None = None  # end-to-end checks: matched detections
    sample: int | None = None  # which sample this is (verify keeps each output's worst)
    report_only: bool = False  # recorded, but does not decide the scenario

    def to_json(self) -> dict[str, Any]:
        """The verify.json form: "pass" for `passed`, lists for indices, no None fields."""
        out: dict[str, Any] = {"pass": self.passed}
        for f in dataclasses.fields(self)[1:]:
            value = getattr(self, f.name)
            if f.name == "report_only":
                if value:
                    out[f.name] = True
            elif value is not None:
                out[f.name] = list(value) if f.name == "worst_index" else value
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OutputComparison:
        fields = {k: v for k, v in data.items() if k != "pass"}
        if "worst_index" in fields:
            fields["worst_index"] = tuple(fields["worst_index"])
        return cls(passed=data["pass"], **fields)

    @property
    def severity(self) -> tuple[bool, float]:
        """Sorts the worse of two results last: a failure, then the larger error."""
        return (not self.passed, np.inf if self.max_abs_error is None else self.max_abs_error)


def compare(ref: np.ndarray, test: np.ndarray, tol: Tolerance) -> OutputComparison:
    """Every element of `test` against `ref`, in float64."""
    if ref.shape != test.shape:
        return OutputComparison(False, error=f"shape {list(test.shape)} != reference {list(ref.shape)}")
    ref64, test64 = ref.astype(np.float64), test.astype(np.float64)
    err = np.abs(ref64 - test64)
    allowed = tol.atol + tol.rtol * np.abs(ref64)
    if err.size == 0:
        return OutputComparison(True, max_abs_error=0.0, max_rel_error=0.0, worst_index=())
    excess = err / np.maximum(allowed, np.finfo(np.float64).tiny)
    worst = np.unravel_index(int(np.argmax(excess)), err.shape)
    rel = err / np.maximum(np.abs(ref64), 1e-12)
    return OutputComparison(
        passed=bool(np.all(err <= allowed)) and bool(np.isfinite(test64).all()),
        max_abs_error=float(err.max()),
        max_rel_error=float(rel.max()),
        worst_index=tuple(int(i) for i in worst),
        worst_ref=float(ref64[worst]),
        worst_test=float(test64[worst]),
        failed_elements=int(np.count_nonzero(err > allowed)),
        atol=tol.atol,
        rtol=tol.rtol,
    )
