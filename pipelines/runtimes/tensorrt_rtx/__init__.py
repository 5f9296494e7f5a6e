"""TensorRT for RTX: engines built ahead of time on the CPU, one per listed compute capability."""
