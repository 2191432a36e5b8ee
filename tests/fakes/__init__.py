"""Stand-ins for GPU libraries (TensorRT flavours, a CUDA device) used by tests on CPU-only machines."""
