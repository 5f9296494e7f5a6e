"""PyTorch: the source model as a backend (the fp32 reference); no build target."""
