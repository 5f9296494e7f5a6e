"""End-to-end comparison of two backends' boxes for verify: match boxes of the same class by BEV centre,
then check centre, size, yaw (modulo pi), velocity and score of every pair against the scenario's tolerances
(keys `boxes.center`, `boxes.size`, `boxes.yaw`, `boxes.velocity`, `boxes.score`). A box without a
partner fails unless its score is within the score tolerance of the threshold (it may fall either side)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from pipelines.comparison import OutputComparison
from pipelines.descriptor import Tolerance
from pipelines.tasks.detection3d.decode import Boxes3D

MATCH_RADIUS = 1.0  # metres: boxes further apart are different objects


# The result keys of `compare_boxes`: what a scenario's tolerances and report_only may name.
BOX_CHECKS = ("boxes.center", "boxes.size", "boxes.yaw", "boxes.velocity", "boxes.score", "boxes.matched")


def match(ref: Boxes3D, test: Boxes3D) -> list[tuple[int, int]]:
    """Greedy, best reference score first, nearest same-class test box within MATCH_RADIUS."""
    pairs, used = [], np.zeros(len(test), bool)
    for i in np.argsort(-ref.scores, kind="stable"):
        d = np.linalg.norm(test.boxes[:, :2] - ref.boxes[i, :2], axis=1)
        d[used | (test.labels != ref.labels[i])] = np.inf
        if len(d) and (j := int(np.argmin(d))) is not None and d[j] <= MATCH_RADIUS:
            used[j] = True
            pairs.append((int(i), j))
    return pairs


def _errors(
    ref: np.ndarray, test: np.ndarray, err: np.ndarray, tol: Tolerance, pairs: list[tuple[int, int]]
) -> OutputComparison:
    if err.size == 0:
        return OutputComparison(True, max_abs_error=0.0, worst_index=(), atol=tol.atol, rtol=tol.rtol)
    allowed = tol.atol + tol.rtol * np.abs(ref)
    worst = np.unravel_index(int(np.argmax(err / np.maximum(allowed, 1e-300))), err.shape)
    return OutputComparison(
        passed=bool(np.all(err <= allowed)),
        max_abs_error=float(err.max()),
        worst_index=(pairs[worst[0]][0], *[int(w) for w in worst[1:]]),
        worst_ref=float(ref[worst]),
        worst_test=float(test[worst]),
        failed_elements=int(np.count_nonzero(err > allowed)),
        atol=tol.atol,
        rtol=tol.rtol,
    )


def compare_boxes(
    ref: Boxes3D, test: Boxes3D, tolerance: Callable[[str], Tolerance], score_threshold: float
) -> dict[str, OutputComparison]:
    pairs = match(ref, test)
    ri = np.asarray([i for i, _ in pairs], np.int64)
    ti = np.asarray([j for _, j in pairs], np.int64)
    r, t = ref.take(ri), test.take(ti)
    # Yaw modulo pi: yaw and yaw + pi are the same box, and int8 flips the heading of near-square
    # boxes without moving them. A heading bug still fails verify on the raw `rot` outputs.
    yaw = (r.boxes[:, 6] - t.boxes[:, 6]) % np.pi
    yaw = np.minimum(yaw, np.pi - yaw)
    centre = np.linalg.norm(r.boxes[:, :3] - t.boxes[:, :3], axis=1)
    out = {
        "boxes.center": _errors(np.zeros_like(centre), centre, centre, tolerance("boxes.center"), pairs),
        "boxes.size": _errors(
            r.boxes[:, 3:6], t.boxes[:, 3:6], np.abs(r.boxes[:, 3:6] - t.boxes[:, 3:6]), tolerance("boxes.size"), pairs
        ),
        "boxes.yaw": _errors(r.boxes[:, 6], t.boxes[:, 6], yaw, tolerance("boxes.yaw"), pairs),
        "boxes.velocity": _errors(
            r.velocity, t.velocity, np.abs(r.velocity - t.velocity), tolerance("boxes.velocity"), pairs
        ),
        "boxes.score": _errors(r.scores, t.scores, np.abs(r.scores - t.scores), tolerance("boxes.score"), pairs),
    }
    margin = score_threshold + tolerance("boxes.score").atol
    lonely = [("reference", b, i) for b, i in ((ref, i) for i in sorted(set(range(len(ref))) - set(ri.tolist())))]
    lonely += [("test", b, j) for b, j in ((test, j) for j in sorted(set(range(len(test))) - set(ti.tolist())))]
    bad = [(side, b, k) for side, b, k in lonely if b.scores[k] > margin]
    why = None
    if bad:
        side, b, k = bad[0]
        x, y = b.boxes[k, :2]
        why = (
            f"{len(bad)} boxes without a partner; first: {side} box {k} (label {int(b.labels[k])}, "
            f"score {b.scores[k]:.3f}) at ({x:.2f}, {y:.2f})"
        )
    out["boxes.matched"] = OutputComparison(not bad, error=why, max_abs_error=float(len(bad)), pairs=len(pairs))
    return out
