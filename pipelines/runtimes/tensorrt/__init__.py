"""TensorRT 10/11: engines built on and for the GPU of the build machine."""
