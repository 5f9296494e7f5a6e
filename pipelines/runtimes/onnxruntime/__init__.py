"""ONNX Runtime: CPU sessions of the offline-optimized `.ort` model (build.py) it runs."""
