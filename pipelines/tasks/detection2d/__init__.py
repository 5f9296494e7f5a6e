"""2D object detection (YOLOX-style outputs): letterbox in, per-anchor predictions out, COCO metrics.

The model component takes letterboxed BGR pixels (0-255, float32, NCHW; any normalization is part
of the graph) and returns one per-anchor tensor (B, N, 5 + C): dx, dy, log w, log h (raw
regressions), objectness and C class scores (both after the sigmoid), the layout Autoware's
autoware_tensorrt_yolox decodes (`autoware`). Decoding, score threshold and NMS are here, so every
backend's raw outputs become detections the same way.
"""

from pipelines.tasks.detection2d.task import Detection2DOptions, Detection2DTask

TASK = Detection2DTask

__all__ = ["TASK", "Detection2DOptions", "Detection2DTask"]
