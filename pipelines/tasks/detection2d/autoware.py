"""The files Autoware's `autoware_tensorrt_yolox` node reads beside the ONNX file, from the descriptor.

What the node reads (autowarefoundation/autoware_universe, perception/autoware_tensorrt_yolox; the
revision is in tests/data/autoware/tensorrt_yolox/SOURCE.md):
- its launch file takes `model_path`, `label_path`, `ml_package_param_path` (default
  `<data_path>/tensorrt_yolox/ml_package_yolox.param.yaml`) and `roi_remap_path`;
- the ml_package file holds exactly the keys of `schema/ml_package_yolox.schema.json` (no others:
  the schema forbids them, so the model and modelzoo versions go in a comment);
- the label file: one class name per line, line i naming class index i (the node trims each line
  and sizes its decoder's 5 + C stride by the line count);
- the ROI remap: a header line, then `name,id` rows mapping every label to an
  `autoware_perception_msgs/ObjectClassification` id. A label missing from it is an error, and
  without a remap file the node drops every detection.

Every file is named after the model, so several models share one `tensorrt_yolox` folder.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import yaml

from pipelines.version import __version__

if TYPE_CHECKING:
    from pipelines.descriptor import Descriptor

# autoware_perception_msgs/msg/ObjectClassification label constants.
OBJECT_CLASSIFICATION = {
    "UNKNOWN": 0,
    "CAR": 1,
    "TRUCK": 2,
    "BUS": 3,
    "TRAILER": 4,
    "MOTORCYCLE": 5,
    "BICYCLE": 6,
    "PEDESTRIAN": 7,
}


def file_names(model: str) -> dict[str, str]:
    """Launch argument -> file name, for one model."""
    return {
        "model_path": f"{model}.onnx",
        "ml_package_param_path": f"ml_package_{model}.param.yaml",
        "label_path": f"{model}_label.txt",
        "roi_remap_path": f"{model}_roi_label_remap.csv",
    }


def ml_package(desc: Descriptor, score_threshold: float, nms_threshold: float) -> dict[str, Any]:
    """The node's ml_package parameters. The node builds its own engine from the fp32 ONNX file:
    fp16 when the descriptor verifies and evaluates an fp16 variant, else fp32. int8 in the node
    means its own implicit calibration (images or a clip value), which this bundle does not verify,
    so it is never chosen; the calibration algorithm still names the descriptor's."""
    return {
        "precision": "fp16" if "fp16" in desc.build.precisions else "fp32",
        "calibration_algorithm": desc.build.calibration_method,
        "quantize_first_layer": False,
        "quantize_last_layer": False,
        "profile_per_layer": False,
        # No clipping: the network's activations are ReLU, not ReLU6 (the schema's default of 6.0).
        "clip_value": 0.0,
        "score_threshold": score_threshold,
        "nms_threshold": nms_threshold,
    }


def bundle(desc: Descriptor, component: str, options: Any) -> dict[str, str]:
    """File name -> text, for the export stage to write beside `<component>.onnx`."""
    names = file_names(component)
    params = ml_package(desc, options.ros_score_threshold, options.nms_threshold)
    header = f"# {desc.name} {desc.version}, written by modelzoo {__version__} for autoware_tensorrt_yolox\n"
    body = yaml.safe_dump({"/**": {"ros__parameters": params}}, sort_keys=False, default_flow_style=False)
    labels = {name: options.autoware_labels.get(name, "UNKNOWN") for name in options.class_names}
    remap = "".join(f"{name},{OBJECT_CLASSIFICATION[label]}\n" for name, label in labels.items())
    return {
        names["ml_package_param_path"]: header + body,
        names["label_path"]: "".join(f"{name}\n" for name in options.class_names),
        names["roi_remap_path"]: "label_name,label_id\n" + remap,
    }
