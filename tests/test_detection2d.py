"""detection2d task code: letterbox, YOLOX decoding against mmdet's own, NMS, COCO files and metrics."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipelines.comparison import OutputComparison
from pipelines.descriptor import load_descriptor
from pipelines.errors import ModelzooError
from pipelines.tasks import get_task
from pipelines.tasks.detection2d import coco
from pipelines.tasks.detection2d.boxes import Detections, decode, letterbox, select, unletterbox
from pipelines.workspace import ModelContext
from tests import autoware_yolox
from tests.autoware_yolox import assert_same_objects
from tests.helpers import REPO

MODEL = "yolox"
AUTOWARE = REPO / "tests" / "data" / "autoware" / "tensorrt_yolox"
CATS = '{"id": 1, "name": "circle"}, {"id": 2, "name": "rectangle"}, {"id": 3, "name": "triangle"}'


@pytest.fixture(scope="module")
def task():  # type: ignore[no-untyped-def]
    return get_task(ModelContext(REPO, load_descriptor(REPO, MODEL)))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A few images of the reference data generator, in COCO layout."""
    sys.path.insert(0, str(REPO / "models" / MODEL))
    try:
        import reference  # type: ignore[import-not-found]
    finally:
        sys.path.pop(0)
    out = tmp_path_factory.mktemp("coco")
    reference.make_split(out, "val", 12, seed=7)
    return out


def test_letterbox_keeps_aspect_truncates_and_pads_right_bottom() -> None:
    img = np.full((240, 320, 3), 7, np.uint8)
    out, lb = letterbox(img, (320, 320), 114)
    assert out.shape == (320, 320, 3)
    assert (lb.scale, lb.width, lb.height) == (1.0, 320, 240)
    assert (out[:240] == 7).all() and (out[240:] == 114).all()
    tall = np.zeros((400, 100, 3), np.uint8)
    out, lb = letterbox(tall, (320, 320), 114)
    assert (lb.scale, lb.width, lb.height) == (pytest.approx(0.8), 80, 320)
    assert (out[:, 80:] == 114).all()
    # 461 x 320/700 = 210.74: truncated as the node does (mmdet would round to 211).
    assert letterbox(np.zeros((461, 700, 3), np.uint8), (320, 320), 114)[1].height == 210
    dets = Detections(np.array([[8.0, 16.0, 40.0, 320.0]], np.float32), np.ones(1, np.float32), np.zeros(1, np.int64))
    back = unletterbox(dets, lb, 100, 400)
    np.testing.assert_allclose(back.boxes, [[10, 20, 50, 400]])


def test_decode_matches_mmdet_priors_and_bbox_decode(task) -> None:  # type: ignore[no-untyped-def]
    """The task's grid and decoding are mmdet's YOLOXHead layout, anchor for anchor."""
    import torch

    from pipelines.sources.openmmlab import build_detector

    ctx = task.ctx
    head: Any = build_detector(ctx, checkpoint=False)[0].bbox_head
    sizes = [(320 // s, 320 // s) for s in task.options.strides]
    mm_priors = torch.cat(head.prior_generator.grid_priors(sizes, dtype=torch.float32, device="cpu", with_stride=True))
    np.testing.assert_array_equal(task.priors[:, :2], mm_priors[:, :2].numpy())
    np.testing.assert_array_equal(task.priors[:, 2], mm_priors[:, 2].numpy())
    raw = np.random.default_rng(0).normal(0, 1, (1, len(task.priors), 4)).astype(np.float32)
    expected = head._bbox_decode(mm_priors, torch.from_numpy(raw)).numpy()
    np.testing.assert_allclose(decode(raw, task.priors), expected, rtol=1e-6, atol=1e-4)


def test_select_thresholds_and_suppresses_per_class() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [0, 0, 10, 10], [50, 50, 60, 60]], np.float32)
    obj = np.array([0.9, 0.8, 0.9, 0.005], np.float32)
    cls = np.array([[1, 0], [1, 0], [0, 0.7], [1, 0]], np.float32)
    dets = select(boxes, obj, cls, score_threshold=0.01, nms_threshold=0.5, max_detections=10)
    # Box 1 overlaps box 0 of the same class; box 2 overlaps too but is another class; box 3 is too weak.
    assert dets.labels.tolist() == [0, 1]
    np.testing.assert_allclose(dets.scores, [0.9, 0.63], rtol=1e-6)
    top1 = select(boxes, obj, cls, score_threshold=0.01, nms_threshold=0.5, max_detections=1)
    assert len(top1) == 1 and top1.labels.tolist() == [0]


def test_coco_file_round_trip(task, dataset: Path) -> None:  # type: ignore[no-untyped-def]
    """instances file -> samples -> COCO objects: the same images, boxes, categories and areas."""
    path = dataset / "annotations" / "instances_val.json"
    original = json.loads(path.read_text())
    samples = task.load_samples(dataset, "val", -1)
    assert [s.image_id for s in samples] == [im["id"] for im in original["images"]]
    gt = coco.ground_truth(samples, task.options.class_names)
    assert gt["images"] == [{k: im[k] for k in ("id", "file_name", "width", "height")} for im in original["images"]]
    assert gt["categories"] == original["categories"]
    assert len(gt["annotations"]) == len(original["annotations"])
    for mine, theirs in zip(gt["annotations"], original["annotations"], strict=True):
        for k in ("image_id", "category_id", "area", "iscrowd"):
            assert mine[k] == theirs[k]
        np.testing.assert_allclose(mine["bbox"], theirs["bbox"], atol=1e-4)
    # Ground truth given back as detections scores perfectly; with every box shifted it cannot.
    perfect = [Detections(s.boxes, np.ones(len(s.labels), np.float32), s.labels) for s in samples]
    m = task.metrics(perfect, samples)
    assert m["mAP"] == pytest.approx(1.0) and m["mAP_50"] == pytest.approx(1.0)
    # No object of COCO's "large" size (96^2 px) in these images: no number rather than a 0.
    assert "mAP_large" not in m and m["mAP_small"] == pytest.approx(1.0)
    assert all(m[f"AP_{n}"] == pytest.approx(1.0) for n in task.options.class_names)
    shifted = [Detections(d.boxes + 25.0, d.scores, d.labels) for d in perfect]
    assert task.metrics(shifted, samples)["mAP"] < 0.2
    # Results written in COCO's results format load in pycocotools as detections of these images.
    results = coco.results(perfect, samples)
    assert {r["image_id"] for r in results} <= {s.image_id for s in samples}
    assert results[0].keys() == {"image_id", "category_id", "bbox", "score"}


def test_real_coco_layout_maps_categories_by_name(task, tmp_path: Path, dataset: Path) -> None:  # type: ignore[no-untyped-def]
    """A COCO file with other ids, extra categories and crowd boxes loads by category name."""
    data = json.loads((dataset / "annotations" / "instances_val.json").read_text())
    remap = {1: 17, 2: 3, 3: 90}
    data["categories"] = [
        {"id": 5, "name": "person", "supercategory": "x"},
        *({"id": remap[c["id"]], "name": c["name"]} for c in data["categories"]),
    ]
    for a in data["annotations"]:
        a["category_id"] = remap[a["category_id"]]
    data["annotations"].append({"id": 10_000, "image_id": 1, "category_id": 5, "bbox": [0, 0, 5, 5], "area": 25})
    data["annotations"].append(
        {"id": 10_001, "image_id": 1, "category_id": 17, "bbox": [0, 0, 9, 9], "area": 81, "iscrowd": 1}
    )
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "instances_val2017.json").write_text(json.dumps(data))
    (tmp_path / "val2017").symlink_to(dataset / "val")
    samples = task.load_samples(tmp_path, "val2017", 3)
    reference = task.load_samples(dataset, "val", 3)
    assert len(samples) == 3
    for a, b in zip(samples, reference, strict=True):
        assert a.labels.tolist() == b.labels.tolist()
        np.testing.assert_array_equal(a.boxes, b.boxes)
    assert coco.read_image(samples[0]).shape == (samples[0].height, samples[0].width, 3)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not a readable JSON file"),
        ('{"images": [], "annotations": []}', "categories: missing or not a list"),
        (
            '{"images": [], "annotations": [{"image_id": 1}], "categories": [' + CATS + "]}",
            "annotations.0: needs image_id",
        ),
        ('{"images": [], "annotations": [], "categories": [{"id": 1, "name": "car"}]}', "categories: no ['circle'"),
    ],
)
def test_bad_annotation_files_name_the_file_and_field(task, tmp_path: Path, content: str, message: str) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "annotations").mkdir()
    path = tmp_path / "annotations" / "instances_val.json"
    path.write_text(content)
    with pytest.raises(ModelzooError) as err:
        task.load_samples(tmp_path, "val", -1)
    assert str(path) in str(err.value) and message in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_image_is_one_line(task, dataset: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sample = task.load_samples(dataset, "val", 1)[0]
    moved = coco.Sample(**{**sample.__dict__, "path": tmp_path / "gone.jpg"})
    with pytest.raises(ModelzooError, match=r"gone\.jpg: image missing or unreadable \(image id 1\)"):
        coco.read_image(moved)


def _ml_package_errors(document: Any) -> list[str]:
    import jsonschema

    schema = json.loads((AUTOWARE / "ml_package_yolox.schema.json").read_text())
    validator = jsonschema.Draft7Validator(schema)
    return [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(document)]


def test_deploy_files_are_what_autoware_tensorrt_yolox_reads(task) -> None:  # type: ignore[no-untyped-def]
    """The ml_package file passes the node's own schema; label and remap files parse as the node parses them."""
    import yaml

    files = task.deploy_files()
    assert set(files) == {"ml_package_yolox.param.yaml", "yolox_label.txt", "yolox_roi_label_remap.csv"}
    params = yaml.safe_load(files["ml_package_yolox.param.yaml"])
    assert _ml_package_errors(params) == []
    assert params["/**"]["ros__parameters"] == {
        "precision": "fp16",
        "calibration_algorithm": "Percentile",
        "quantize_first_layer": False,
        "quantize_last_layer": False,
        "profile_per_layer": False,
        "clip_value": 0.0,
        "score_threshold": 0.35,
        "nms_threshold": 0.65,
    }
    assert files["ml_package_yolox.param.yaml"].startswith("# yolox 1.0.0, written by modelzoo ")
    # The node sizes its decoder (5 + C values per anchor) by the label file's line count.
    assert autoware_yolox.read_label_file(files["yolox_label.txt"]) == ["circle", "rectangle", "triangle"]
    remap = autoware_yolox.read_remap_file(files["yolox_roi_label_remap.csv"])
    assert remap == {"circle": 0, "rectangle": 0, "triangle": 0}  # UNKNOWN: no Autoware class for shapes
    # The schema is strict: the parameter file this project wrote before (extra keys) fails it.
    old = {"/**": {"ros__parameters": {"model_path": "yolox.onnx", "score_threshold": 0.35, "nms_threshold": 0.65}}}
    errors = _ml_package_errors(old)
    assert any("Additional properties" in e for e in errors) and any("'precision' is a required" in e for e in errors)


def test_autoware_labels_map_classes_and_unknown_names_are_refused() -> None:
    from pipelines.tasks.detection2d import Detection2DOptions
    from pipelines.tasks.detection2d.autoware import bundle

    desc = load_descriptor(REPO, MODEL)
    opts = Detection2DOptions(class_names=["car", "person"], autoware_labels={"person": "PEDESTRIAN"})
    remap = bundle(desc, "cam", opts)["cam_roi_label_remap.csv"]
    assert autoware_yolox.read_remap_file(remap) == {"car": 0, "person": 7}
    with pytest.raises(ValueError, match=r"autoware_labels: \['bus'\] are not in class_names"):
        Detection2DOptions(class_names=["car"], autoware_labels={"bus": "BUS"})
    with pytest.raises(ValueError, match=r"autoware_labels\.car"):
        Detection2DOptions(class_names=["car"], autoware_labels={"car": "AUTO"})


def _synthetic_output(task, rng: np.random.Generator) -> np.ndarray:  # type: ignore[no-untyped-def]
    """A (N, 5 + C) output with a few confident anchors (some overlapping), the rest background."""
    n, c = len(task.priors), len(task.options.class_names)
    out = np.empty((n, 5 + c), np.float32)
    out[:, :2] = rng.uniform(0, 1, (n, 2))
    out[:, 2:4] = rng.normal(0.5, 0.5, (n, 2))
    out[:, 4] = rng.uniform(0, 0.2, n)
    out[:, 5:] = rng.uniform(0, 1, (n, c))
    hot = rng.choice(n, 40, replace=False)
    out[hot, 4] = rng.uniform(0.5, 1.0, 40)
    out[hot, 5:] = rng.uniform(0, 0.3, (40, c))
    out[hot, 5 + rng.integers(0, c, 40)] = rng.uniform(0.6, 1.0, 40)
    return out


def test_node_decode_and_task_postprocess_agree_on_the_layout(task) -> None:  # type: ignore[no-untyped-def]
    """The node's decode (re-implemented from its source) and the task's, on one output tensor: the
    same objects. The same tensor read in another layout (scores before boxes) gives other objects,
    so the check can fail. On the trained model's verify samples: tests/test_yolox.py."""
    from pipelines.tasks.detection2d.boxes import Letterbox

    o = task.options
    rng = np.random.default_rng(3)
    for image_wh in ((320, 240), (384, 288)):
        out = _synthetic_output(task, rng)
        scale = autoware_yolox.letterbox_scale(task.input_size, image_wh)
        node = autoware_yolox.decode_outputs(
            out, task.input_size, len(o.class_names), o.ros_score_threshold, o.nms_threshold, scale, image_wh
        )
        boxes = decode(out[:, :4], task.priors)
        mine = select(boxes, out[:, 4], out[:, 5:], o.ros_score_threshold, o.nms_threshold, o.max_detections)
        mine = unletterbox(mine, Letterbox(scale, 0, 0), *image_wh)
        assert len(node.scores) >= 5
        assert_same_objects(node, mine, scale)
        swapped = np.concatenate([out[:, 4:], out[:, :4]], axis=1)
        other = autoware_yolox.decode_outputs(
            swapped, task.input_size, len(o.class_names), o.ros_score_threshold, o.nms_threshold, scale, image_wh
        )
        with pytest.raises(AssertionError):
            assert_same_objects(other, mine, scale)


def test_verify_compares_detections_at_the_operating_point(task) -> None:  # type: ignore[no-untyped-def]
    """Scores judged on their own (the one output tensor shares its tolerance with the regressions)."""
    from pipelines.descriptor import Tolerance

    ref = Detections(
        np.array([[10, 10, 50, 50], [100, 100, 140, 160], [200, 10, 230, 40]], np.float32),
        np.array([0.9, 0.6, 0.2], np.float32),
        np.array([0, 1, 2], np.int64),
    )
    tol = Tolerance(atol=0.05, rtol=0.0)

    def check(test: Detections) -> dict[str, OutputComparison]:
        return task.compare_predictions(ref, test, lambda key: tol)

    # A little noise in boxes and scores, and the low-score detection gone: both pass.
    same = Detections(ref.boxes[:2] + 1.5, ref.scores[:2] - 0.01, ref.labels[:2])
    out = check(same)
    assert out["detections.score"].passed and out["detections.matched"].passed
    assert out["detections.score"].pairs == 2
    # A score off by more than the tolerance fails the score check.
    off = check(Detections(ref.boxes[:2], np.array([0.9, 0.5], np.float32), ref.labels[:2]))
    assert not off["detections.score"].passed and off["detections.score"].max_abs_error == pytest.approx(0.1)
    assert off["detections.score"].error == "score 0.5000 vs reference 0.6000 (class 1; atol 0.05, rtol 0)"
    # A confident detection missing, or of another class, fails the match, naming it.
    for test in (
        Detections(ref.boxes[:1], ref.scores[:1], ref.labels[:1]),
        Detections(ref.boxes, ref.scores, ref.labels[::-1]),
    ):
        res = check(test)["detections.matched"]
        assert not res.passed and "without a partner; first: reference class" in (res.error or "")
